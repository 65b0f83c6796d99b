CREATE TABLE blobs (
	sha256 VARCHAR(64) NOT NULL, 
	size BIGINT NOT NULL, 
	created FLOAT NOT NULL, 
	PRIMARY KEY (sha256)
);

CREATE TABLE experiments (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	created FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE key_sets (
	id BIGINT NOT NULL, 
	keys TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE named_artifacts (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	type VARCHAR(64) NOT NULL, 
	created FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE registered_models (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	description TEXT DEFAULT '' NOT NULL, 
	tags TEXT DEFAULT '{}' NOT NULL, 
	created FLOAT NOT NULL, 
	updated FLOAT NOT NULL, 
	last_version INTEGER DEFAULT '0' NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE store_settings (
	name VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY (name)
);

CREATE TABLE artifact_aliases (
	artifact_id INTEGER NOT NULL, 
	alias VARCHAR(255) NOT NULL, 
	version INTEGER NOT NULL, 
	PRIMARY KEY (artifact_id, alias), 
	FOREIGN KEY(artifact_id) REFERENCES named_artifacts (id) ON DELETE CASCADE
);

CREATE TABLE artifact_files (
	artifact_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	path VARCHAR(1000) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	size BIGINT NOT NULL, 
	PRIMARY KEY (artifact_id, version, path), 
	FOREIGN KEY(artifact_id) REFERENCES named_artifacts (id) ON DELETE CASCADE
);

CREATE INDEX ix_artifact_files_sha256 ON artifact_files (sha256);

CREATE TABLE artifact_links (
	run_uuid VARCHAR(36) NOT NULL, 
	artifact_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	role VARCHAR(8) NOT NULL, 
	created FLOAT NOT NULL, 
	PRIMARY KEY (run_uuid, artifact_id, version, role), 
	FOREIGN KEY(artifact_id) REFERENCES named_artifacts (id) ON DELETE CASCADE
);

CREATE INDEX ix_artifact_links_version ON artifact_links (artifact_id, version);

CREATE TABLE artifact_versions (
	artifact_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	digest VARCHAR(64) NOT NULL, 
	size BIGINT NOT NULL, 
	file_count INTEGER NOT NULL, 
	run_uuid VARCHAR(36) NOT NULL, 
	created FLOAT NOT NULL, 
	PRIMARY KEY (artifact_id, version), 
	FOREIGN KEY(artifact_id) REFERENCES named_artifacts (id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX ux_artifact_versions_digest ON artifact_versions (artifact_id, digest);

CREATE TABLE model_aliases (
	model_id INTEGER NOT NULL, 
	alias VARCHAR(255) NOT NULL, 
	version INTEGER NOT NULL, 
	PRIMARY KEY (model_id, alias), 
	FOREIGN KEY(model_id) REFERENCES registered_models (id) ON DELETE CASCADE
);

CREATE TABLE model_versions (
	model_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	run_uuid VARCHAR(36) NOT NULL, 
	model_path VARCHAR(1000) NOT NULL, 
	description TEXT DEFAULT '' NOT NULL, 
	tags TEXT DEFAULT '{}' NOT NULL, 
	created FLOAT NOT NULL, 
	PRIMARY KEY (model_id, version), 
	FOREIGN KEY(model_id) REFERENCES registered_models (id) ON DELETE CASCADE
);

CREATE INDEX ix_model_versions_run ON model_versions (run_uuid);

CREATE TABLE runs (
	number INTEGER NOT NULL, 
	uuid VARCHAR(36) NOT NULL, 
	experiment_id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	start_time FLOAT NOT NULL, 
	end_time FLOAT, 
	heartbeat FLOAT, 
	username VARCHAR(255) DEFAULT '' NOT NULL, 
	host VARCHAR(255) DEFAULT '' NOT NULL, 
	pid INTEGER, 
	notes TEXT DEFAULT '' NOT NULL, 
	error TEXT, 
	exit_code INTEGER, 
	parent_uuid VARCHAR(36), 
	deleted BOOLEAN DEFAULT '0' NOT NULL, 
	reproduces_uuid VARCHAR(36), 
	run_group VARCHAR(255), 
	job_type VARCHAR(255), 
	PRIMARY KEY (number), 
	UNIQUE (uuid), 
	FOREIGN KEY(experiment_id) REFERENCES experiments (id)
);

CREATE INDEX ix_runs_experiment_start ON runs (experiment_id, start_time);

CREATE INDEX ix_runs_group ON runs (run_group);

CREATE INDEX ix_runs_live ON runs (number) WHERE NOT deleted;

CREATE INDEX ix_runs_parent ON runs (parent_uuid);

CREATE INDEX ix_runs_start ON runs (start_time, number);

CREATE INDEX ix_runs_status ON runs (status);

CREATE TABLE artifacts (
	run_number INTEGER NOT NULL, 
	path VARCHAR(1000) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	size BIGINT NOT NULL, 
	kind VARCHAR(16) DEFAULT 'output' NOT NULL, 
	created FLOAT NOT NULL, 
	PRIMARY KEY (run_number, path), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE, 
	FOREIGN KEY(sha256) REFERENCES blobs (sha256)
);

CREATE TABLE blob_refs (
	run_number INTEGER NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	PRIMARY KEY (run_number, sha256, kind), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE
);

CREATE INDEX ix_blob_refs_sha256 ON blob_refs (sha256);

CREATE TABLE journal_positions (
	writer VARCHAR(80) NOT NULL, 
	run_number INTEGER NOT NULL, 
	position BIGINT NOT NULL, 
	PRIMARY KEY (writer), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE
);

CREATE TABLE media (
	run_number INTEGER NOT NULL, 
	"key" VARCHAR(250) NOT NULL, 
	step BIGINT NOT NULL, 
	idx INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	size BIGINT NOT NULL, 
	time FLOAT NOT NULL, 
	meta TEXT NOT NULL, 
	PRIMARY KEY (run_number, "key", step, idx), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE, 
	FOREIGN KEY(sha256) REFERENCES blobs (sha256)
);

CREATE TABLE metric_chunks (
	id INTEGER NOT NULL, 
	run_number INTEGER NOT NULL, 
	"key" VARCHAR(250) NOT NULL, 
	n INTEGER NOT NULL, 
	first_step BIGINT NOT NULL, 
	last_step BIGINT NOT NULL, 
	steps BLOB NOT NULL, 
	vals BLOB NOT NULL, 
	times BLOB NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE
);

CREATE INDEX ix_metric_chunks_run_key ON metric_chunks (run_number, "key", id);

CREATE TABLE metrics (
	run_number INTEGER NOT NULL, 
	"key" VARCHAR(250) NOT NULL, 
	last FLOAT, 
	last_step BIGINT NOT NULL, 
	last_time FLOAT NOT NULL, 
	min FLOAT, 
	max FLOAT, 
	count BIGINT NOT NULL, 
	PRIMARY KEY (run_number, "key"), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE
);

CREATE INDEX ix_metrics_key_last ON metrics ("key", last, run_number);

CREATE TABLE output_lines (
	id INTEGER NOT NULL, 
	run_number INTEGER NOT NULL, 
	stream VARCHAR(8) NOT NULL, 
	time FLOAT NOT NULL, 
	text TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE
);

CREATE INDEX ix_output_lines_run ON output_lines (run_number, id);

CREATE TABLE params (
	run_number INTEGER NOT NULL, 
	"key" VARCHAR(250) NOT NULL, 
	vtype VARCHAR(8) NOT NULL, 
	num FLOAT, 
	text TEXT, 
	json TEXT NOT NULL, 
	PRIMARY KEY (run_number, "key"), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE
);

CREATE INDEX ix_params_key_num ON params ("key", num, run_number);

CREATE INDEX ix_params_key_text ON params ("key", text, run_number);

CREATE TABLE run_rows (
	run_number INTEGER NOT NULL, 
	param_keyset BIGINT, 
	param_packed BLOB, 
	param_other TEXT, 
	summary_keyset BIGINT, 
	summary_packed BLOB, 
	summary_other TEXT, 
	metric_keyset BIGINT, 
	metric_packed BLOB, 
	PRIMARY KEY (run_number), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE
);

CREATE TABLE snapshots (
	run_number INTEGER NOT NULL, 
	data TEXT NOT NULL, 
	PRIMARY KEY (run_number), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE
);

CREATE TABLE summaries (
	run_number INTEGER NOT NULL, 
	"key" VARCHAR(250) NOT NULL, 
	vtype VARCHAR(8) NOT NULL, 
	num FLOAT, 
	text TEXT, 
	json TEXT NOT NULL, 
	PRIMARY KEY (run_number, "key"), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE
);

CREATE INDEX ix_summaries_key_num ON summaries ("key", num, run_number);

CREATE INDEX ix_summaries_key_text ON summaries ("key", text, run_number);

CREATE TABLE tags (
	run_number INTEGER NOT NULL, 
	tag VARCHAR(250) NOT NULL, 
	PRIMARY KEY (run_number, tag), 
	FOREIGN KEY(run_number) REFERENCES runs (number) ON DELETE CASCADE
);

CREATE INDEX ix_tags_tag ON tags (tag);

CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

INSERT INTO alembic_version (version_num) VALUES ('0011');
