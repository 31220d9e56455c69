"""Training logs go to TensorBoard event files in the round's folder, and to MLflow when asked."""

import struct

import pytest

from modeltrain.mcmdpo.config import MCMDPOConfig
from modeltrain.mcmdpo.run import TENSORBOARD_DIR, run_training


def _scalars(event_file) -> dict[str, list[tuple[int, float]]]:
    """Read a TFRecord event file (length, crc, payload, crc per record) into tag -> [(step, value)]."""
    from tensorboardX.proto import event_pb2

    data = event_file.read_bytes()
    out: dict[str, list[tuple[int, float]]] = {}
    offset = 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        payload = data[offset + 12 : offset + 12 + length]
        offset += 12 + length + 4
        event = event_pb2.Event.FromString(payload)
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


@pytest.mark.parametrize("method", ["sft", "mcmdpo"])
def test_loss_reaches_a_tensorboard_event_file_in_the_output_folder(
    method, tiny_base, synthetic_snapshot, tmp_path
):
    config = MCMDPOConfig(
        method=method,
        base_model=str(tiny_base),
        learning_rate=1e-3,
        max_steps=3,
        per_device_batch_size=2,
        logging_steps=1,
        save_steps=100,
        resume=False,
    )
    run_training(config, synthetic_snapshot, tmp_path / "round")
    files = list((tmp_path / "round" / TENSORBOARD_DIR).rglob("events.out.tfevents.*"))
    assert len(files) == 1
    scalars = _scalars(files[0])
    assert [step for step, _ in scalars["train/loss"]] == [1, 2, 3]
    if method == "mcmdpo":
        assert "train/rewards/margins/image" in scalars


def test_mlflow_requested_without_mlflow_installed_is_a_clear_error(
    monkeypatch, tiny_base, synthetic_snapshot, tmp_path
):
    pytest.importorskip("transformers")
    from transformers.integrations import is_mlflow_available

    if is_mlflow_available():
        pytest.skip("mlflow is installed here")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "mlruns"))
    config = MCMDPOConfig(method="sft", base_model=str(tiny_base), max_steps=1, resume=False)
    with pytest.raises(RuntimeError, match="mlflow is not installed"):
        run_training(config, synthetic_snapshot, tmp_path / "round")
    assert not (tmp_path / "round" / "final").exists()
