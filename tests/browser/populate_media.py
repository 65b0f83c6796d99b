"""Fill a store with runs that log media, for the media panels' browser tests:
``python populate_media.py STORE``.

Run 1 and run 2 log 12 steps of a 16x16 image whose colour tells the step and run, a list of
two images, a histogram and a table each step, and run 1 a plotly figure once; run 3 logs
only a scalar."""

from __future__ import annotations

import sys

import numpy as np
import plotly.graph_objects as go

import labkeep

STEPS = 12


def main(store: str) -> None:
    for run_index in range(2):
        with labkeep.init("media", store=store, config={"run": run_index}) as run:
            rng = np.random.default_rng(run_index)
            for step in range(STEPS):
                pixels = np.zeros((16, 16, 3), dtype=np.uint8)
                pixels[..., 0] = step * 20
                pixels[..., 1] = run_index * 200
                rows = [
                    {
                        "id": i,
                        "label": "cat" if (i + step) % 3 else "dog",
                        "score": (i * 7 % 10) / 10,
                    }
                    for i in range(6)
                ]
                run.log(
                    {
                        "loss": 1.0 / (step + 1),
                        "samples": labkeep.Image(pixels, caption=f"run {run_index} step {step}"),
                        "pair": [labkeep.Image(pixels[:8]), labkeep.Image(255 - pixels[:8])],
                        "weights": labkeep.Histogram(rng.normal(step, 1.0, 500), bins=20),
                        "preds": labkeep.Table(rows),
                    },
                    step=step,
                )
            if run_index == 0:
                figure = go.Figure(go.Bar(x=["a", "b", "c"], y=[3, 1, 2], name="bars"))
                run.log({"figure": labkeep.Image(figure, caption="a plotly figure")}, step=5)
    with labkeep.init("media", store=store) as run:
        run.log({"loss": 0.5})


if __name__ == "__main__":
    main(sys.argv[1])
