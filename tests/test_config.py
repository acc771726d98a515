"""Config schema: defaults, files, overrides, and errors that name the key."""

import pytest

from spikeforge.train.config import ConfigError, config_to_dict, load_config


def test_defaults_and_overrides(tmp_path):
    cfg = load_config(None, ["data.time_steps=8", "model.channels=[8, 16]", "optim.lr=1e-3"])
    assert cfg.data.time_steps == 8 and cfg.model.channels == [8, 16] and cfg.optim.lr == 1e-3
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nmodel:\n  neuron: plif\n  v_reset: null\n")
    cfg = load_config(str(path), ["epochs=4"])
    assert cfg.epochs == 4 and cfg.model.neuron == "plif" and cfg.model.v_reset is None
    # the resolved dict round-trips
    d = config_to_dict(cfg)
    assert d["model"]["neuron"] == "plif" and d["data"]["name"] == "mnist5k"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.bogus=1"], "unknown config key 'data.bogus'"),
        (["bogus=1"], "unknown config key 'bogus'"),
        (["data.time_steps=0"], "data.time_steps must be >= 1"),
        (["data.time_steps=2.5"], "data.time_steps must be an integer"),
        (["model.tau=abc"], "model.tau must be a number"),
        (["model.neuron=hh"], "model.neuron must be one of"),
        (["model.surrogate=relu"], "model.surrogate must be one of"),
        (["optim.lr=-1"], "optim.lr must be > 0"),
        (["progress=maybe"], "progress must be true or false"),
        (["model.channels=3"], "model.channels must be a list"),
        (["data=5"], "data must be a mapping"),
        (["epochs"], "must look like key.sub=value"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config(None, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(str(lst))
