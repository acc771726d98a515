"""`spikeforge export RUN_DIR --nir FILE` and `spikeforge import-nir FILE --out RUN_DIR`: a
trained default CNN (BatchNorm folded, max pooling of spikes as SumPool2d + Threshold)
exports, imports and evaluates to the same test accuracy."""

import json

import pytest

pytest.importorskip("nir")

from spikeforge.cli import main  # noqa: E402

DATA = ["data.name=digits8x8", "data.augment=[]", "threads=1", "progress=false"]


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nir") / "cnn"
    assert main(["train", "--quiet", "--out", str(out), "epochs=1", "model.name=default_cnn",
                 "model.channels=[6]", "optim.lr=0.01", *DATA]) == 0
    return out


def test_trained_cnn_exports_imports_and_evaluates_the_same(cnn_run, tmp_path, capsys):
    f = tmp_path / "cnn.nir"
    capsys.readouterr()
    assert main(["export", str(cnn_run), "--nir", str(f)]) == 0
    summary = json.loads(capsys.readouterr().out)
    # input, conv, lif, sumpool, threshold, flatten, affine, output
    assert summary["dt"] == 1e-3 and summary["nodes"] == 8
    assert any("fires at H >= V_th" in w for w in summary["warnings"])
    imp = tmp_path / "imported"
    assert main(["import-nir", str(f), *DATA, "--out", str(imp)]) == 0
    capsys.readouterr()
    assert main(["eval", str(cnn_run)]) == 0
    native = json.loads(capsys.readouterr().out)
    assert main(["eval", str(imp)]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert native["test_accuracy"] > 0.3  # chance is 0.1
    assert imported["test_accuracy"] == native["test_accuracy"]


def test_import_nir_bad_file_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.nir"
    bad.write_text("not hdf5")
    assert main(["import-nir", str(bad), *DATA, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "bad.nir is not a NIR file" in err
