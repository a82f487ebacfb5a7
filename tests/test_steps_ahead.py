"""The models' steps computed ahead on a second thread (`models.steps_ahead`, `mix` encoding):
the same bytes as one thread, at every block, with one model or two; a failure in the thread
reaches the coder; a stopped run leaves no thread behind."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ziplab.codecs import mix
from ziplab.models.steps_ahead import StepsAhead

from .test_lane_threads import T1, TEXT


def _params_and_models(model: str | None, level: int = 1) -> tuple[dict, list]:
    from ziplab.codecs.base import CodingOptions

    encoder = mix.CODEC.open_encoder(level, CodingOptions(model=model, lanes=6, workers=1))
    return encoder.params, [mix._nn().build_predictor(encoder.params)]


@pytest.mark.parametrize("model", [None, T1], ids=["shipped-lstm", "t1-transformer"])
def test_steps_ahead_give_the_same_bytes_block_after_block(model):
    params, models = _params_and_models(model)
    data = np.frombuffer(TEXT, dtype=np.uint8)
    tables = [mix.Tables(), mix.Tables()]  # refilled between blocks, as a file's blocks are
    for block in (data[:5000], data[5000:5003], data[5003:]):
        one = mix.encode_block(block, params, models, tables=tables[0], ahead=False)
        two = mix.encode_block(block, params, models, tables=tables[1], ahead=True)
        assert one == two
        assert mix.decode_block(two, len(block), params, models).tobytes() == block.tobytes()


def test_a_failure_on_the_thread_reaches_the_consumer():
    def compute(t: int, out: np.ndarray) -> None:
        if t == 3:
            raise ValueError("step 3 went wrong")
        out[:] = t

    steps = StepsAhead(compute, 10, np.zeros(4))
    assert [float(steps.get(t)[0]) for t in range(3)] == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="step 3"):
        steps.get(3)
    steps.close()


def test_closing_early_stops_the_thread():
    steps = StepsAhead(lambda t, out: out.fill(t), 10_000, np.zeros(2))
    assert steps.get(0)[0] == 0
    steps.close()
    assert not steps.thread.is_alive()
    assert not any(t.name == "ziplab-steps-ahead" for t in threading.enumerate())
