from pathlib import Path

from labkeep.capture import redact_argv
from labkeep.capture._host import collect_host, parse_cpu_model, scrub_value, select_env


def test_allow_list_selects_known_variables() -> None:
    env = {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "OMP_NUM_THREADS": "4",
        "PYTHONHASHSEED": "0",
        "LABKEEP_EXPERIMENT": "mnist",
        "HOME": "/root",
        "PATH": "/usr/bin",
    }
    assert select_env(env) == {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "LABKEEP_EXPERIMENT": "mnist",
        "OMP_NUM_THREADS": "4",
        "PYTHONHASHSEED": "0",
    }


def test_secrets_are_never_selected_even_when_allowed() -> None:
    env = {
        "LABKEEP_API_KEY": "k",
        "LABKEEP_TOKEN": "t",
        "my_secret_value": "s",
        "DB_PASSWORD": "p",
        "WANDB_API_KEY": "w",
        "MY_SETTING": "ok",
    }
    selected = select_env(env, extra_allow=["*"])
    assert selected == {"MY_SETTING": "ok"}


def test_extra_patterns_extend_the_allow_list() -> None:
    env = {"HF_HOME": "/cache/hf", "HF_DATASETS_CACHE": "/d", "OTHER": "x"}
    assert select_env(env, ["HF_*"]) == {"HF_DATASETS_CACHE": "/d", "HF_HOME": "/cache/hf"}


def test_url_credentials_are_scrubbed_from_values() -> None:
    env = {"LABKEEP_STORE": "postgresql://bob:hunter2@db:5432/runs"}
    assert select_env(env) == {"LABKEEP_STORE": "postgresql://db:5432/runs"}
    assert scrub_value("plain value") == "plain value"


def test_redact_argv_hides_secret_flag_values() -> None:
    argv = ["train.py", "--api-key", "abc", "--token=xyz", "password=p", "lr=0.1", "--epochs", "3"]
    assert redact_argv(argv) == [
        "train.py",
        "--api-key",
        "***",
        "--token=***",
        "password=***",
        "lr=0.1",
        "--epochs",
        "3",
    ]


def test_parse_cpu_model_x86_and_arm() -> None:
    x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU\n"
    assert parse_cpu_model(x86) == "Intel(R) Xeon(R) CPU"
    arm = "processor\t: 0\nBogoMIPS\t: 48.00\nCPU part\t: 0xd0c\n\nHardware\t: BCM2835\n"
    assert parse_cpu_model(arm) == "BCM2835"
    assert parse_cpu_model("") is None


def test_collect_host_records_invocation() -> None:
    section = collect_host(
        ["train.py", "lr=0.1", "--secret", "s"],
        Path("/work/proj"),
        "train.py",
        environ={"OMP_NUM_THREADS": "2", "AWS_SECRET_ACCESS_KEY": "x"},
    )
    assert section["argv"] == ["train.py", "lr=0.1", "--secret", "***"]
    assert section["cwd"] == "/work/proj"
    assert section["entry_point"] == "train.py"
    assert section["env"] == {"OMP_NUM_THREADS": "2"}
    assert section["hostname"]
    assert section["cpu_count"] >= 1
    assert section["cpu_model"]
    assert section["memory_total_bytes"] > 0
