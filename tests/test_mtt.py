"""Mixed time-step training: the paper's communication table, and MTT reducing to
standard training when its one configuration is the fixed T."""

from __future__ import annotations

import json

import pytest
import torch

from spikeforge.cli import main
from spikeforge.train import Trainer, load_config
from spikeforge.train.mtt import MixedTimeSteps, communication_table, retime


def test_communication_table_is_the_papers():
    # Hand-evaluated from table_spwn of the authors' code (round((i+1)*more/fewer - 1e-5)).
    assert communication_table(4, 2) == [[0, 1], [2, 3]]
    assert communication_table(3, 2) == [[0], [1, 2]]
    assert communication_table(2, 4) == [[0], [0], [1], [1]]
    assert communication_table(2, 3) == [[0], [1], [1]]
    assert communication_table(5, 5) == [[0], [1], [2], [3], [4]]
    assert communication_table(8, 1) == [list(range(8))]


@pytest.mark.parametrize("t_in", range(1, 13))
def test_communication_preserves_sums_and_order(t_in):
    x = torch.rand(t_in, 3, 5, generator=torch.Generator().manual_seed(t_in))
    for t_out in range(1, 13):
        table = communication_table(t_in, t_out)
        assert len(table) == t_out
        flat = [j for js in table for j in js]
        assert flat == sorted(flat)  # time order kept
        y = retime(x, t_out)
        assert y.shape == (t_out, 3, 5)
        if t_out <= t_in:  # every input step in exactly one output step: sums preserved
            assert flat == list(range(t_in))
            torch.testing.assert_close(y.sum(0), x.sum(0))
        else:  # every output step copies one input step; every input step is used
            assert all(len(js) == 1 for js in table) and set(flat) == set(range(t_in))
            torch.testing.assert_close(y, x[flat])


def _cfg(*extra):
    return load_config(None, ["data.name=digits8x8", "model.name=mlp", "model.hidden=32",
                              "epochs=1", "data.time_steps=3", "progress=false", *extra])


def test_mtt_with_the_fixed_T_equals_standard_training(tmp_path):
    plain = Trainer(_cfg(), str(tmp_path / "a"))
    mtt = Trainer(_cfg("train.mtt.enabled=true", "train.mtt.cut_points=[net.2]",
                       "train.mtt.time_steps=[3]", "train.mtt.samples=1"), str(tmp_path / "b"))
    plain.train_epoch(0)
    mtt.train_epoch(0)
    for (name, p), q in zip(plain.model.state_dict().items(), mtt.model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)


def test_mtt_runs_stages_at_sampled_time_steps(tmp_path):
    tr = Trainer(_cfg("train.mtt.enabled=true", "train.mtt.cut_points=[net.2]",
                      "train.mtt.time_steps=[1,5]", "train.mtt.samples=2"), str(tmp_path / "c"))
    seen = []
    tr.model.net[2].register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
    tr.model.net[1].register_forward_pre_hook(lambda m, a: seen.append(-a[0].shape[0]))
    tr.train_epoch(0)
    stage1, stage0 = {t for t in seen if t > 0}, {-t for t in seen if t < 0}
    assert stage1 == {1, 5} and stage0 == {1, 5}
    with pytest.raises(ValueError, match="not modules of the model"):
        MixedTimeSteps(tr.model, ["net.9"])


def test_samplers_draw_from_the_set():
    model = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Identity(), torch.nn.Identity())
    mtt = MixedTimeSteps(model, ["1", "2"])
    gen = torch.Generator().manual_seed(0)
    draws = {s: [mtt.sample([1, 2, 8], s, gen) for _ in range(200)]
             for s in ("independent", "shared", "input_max")}
    assert all(len(d) == 3 and set(d) <= {1, 2, 8} for ds in draws.values() for d in ds)
    assert all(len(set(d)) == 1 for d in draws["shared"])
    # the authors' event-driven sampler: stage 0 at the input's (largest) T, the rest drawn
    assert all(d[0] == 8 for d in draws["input_max"])
    assert {d[k] for d in draws["input_max"] for k in (1, 2)} == {1, 2, 8}
    assert len({tuple(d) for d in draws["independent"]}) > 20  # stages drawn independently
    with pytest.raises(ValueError, match="mtt.sampler"):
        mtt.sample([1, 2], "nope", gen)


def test_eval_across_time_steps_cli(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--quiet", "--out", str(run), "--dataset", "digits8x8",
                 "model.name=mlp", "model.hidden=32", "epochs=1", "progress=false"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--time-steps", "1,4"]) == 0
    rows = json.loads(capsys.readouterr().out)["time_steps"]
    assert [r["time_steps"] for r in rows] == [1, 4]
    assert all(0.1 < r["accuracy"] <= 1 and 0 <= r["mean_firing_rate"] <= 1 for r in rows)
