"""avqa.runtime: one device rule and one autocast policy for every stage (encoders, training, evaluation)."""
import pytest
import torch

from avqa.runtime import autocast, autocast_dtype, resolve_device


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_resolve_device_cuda_without_gpu():
    with pytest.raises(RuntimeError, match="no CUDA GPU is available"):
        resolve_device("cuda")


def test_autocast_dtype():
    assert autocast_dtype("fp32") is None
    assert autocast_dtype("bf16") is torch.bfloat16 and autocast_dtype("fp16") is torch.float16
    with pytest.raises(ValueError, match="unknown precision 'int8'"):
        autocast_dtype("int8")


def test_fp16_autocast_is_refused_on_cpu_and_fp32_is_a_no_op():
    with pytest.raises(ValueError, match="fp16 autocast is not used on CPU"):
        autocast(torch.device("cpu"), "fp16")
    with autocast(torch.device("cpu"), "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast(torch.device("cpu"), "bf16"):
        assert torch.is_autocast_enabled("cpu")
