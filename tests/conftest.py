"""Fixtures and constants shared by the test files."""
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# The real MUSIC-AVQA annotation files (the JSONs and their README), from one place: AVQA_MUSIC_AVQA_DIR, a relative
# path taken from the repository root; tests that read them skip when the folder is not there.
MUSIC_AVQA_DIR = (ROOT / os.environ.get("AVQA_MUSIC_AVQA_DIR", "../shared/data/music_avqa")).resolve()


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors: one intra-op thread is fastest and avoids spin-waiting on the shared CPU. A test module
    opts in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def extract_spec():
    """extract_spec(encoder, batch=4, precision="fp32", **changes): the default config's ExtractSpec of a
    registered encoder, on the CPU with that batch size and precision, other fields changed by keyword (T1=4,
    workers=0, decode=..., ...). Tests build specs as the workflow does; the defaults stay in config.yaml."""
    import dataclasses
    from pathlib import Path

    from avqa import workflow as W
    from avqa.specs.features import BatchFramesSpec, PrecisionSpec

    config = W.load_config(Path(__file__).resolve().parents[1] / "config.yaml")

    def make(encoder: str, batch: int = 4, precision: str = "fp32", **changes):
        spec = W.extract_spec(config, encoder)
        return dataclasses.replace(spec, device="cpu", batch_frames=BatchFramesSpec(cpu=batch, cuda=batch),
                                   precision=PrecisionSpec(cpu=precision, cuda=spec.precision.cuda), **changes)

    return make
