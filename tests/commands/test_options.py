"""One command-line vocabulary (srredsim/commands/_options.py): same spelling, meaning and default everywhere."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from srredsim.cli import COMMANDS, build_parser
from srredsim.config import OpticsConfig

WRITERS = [name for name, _ in COMMANDS if name != "info"]  # every command but info writes files
OPTICS_COMMANDS = ["reconstruct", "predict", "simulate", "fiji-check", "export"]
OPTICS_FLAGS = ["--na", "--wavelength", "--pixel-size", "--refractive-index", "--angles", "--phases", "--beams"]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _visible_flags(p: argparse.ArgumentParser) -> set[str]:
    return {s for a in p._actions if a.help is not argparse.SUPPRESS for s in a.option_strings}


def _help(p: argparse.ArgumentParser) -> str:
    return p.format_help()


def test_every_command_that_writes_has_output_overwrite_and_quiet():
    subs = _subparsers()
    assert set(WRITERS) | {"info"} == set(subs)
    for name in WRITERS:
        flags = _visible_flags(subs[name])
        assert {"-o", "--output", "--overwrite", "-q", "--quiet"} <= flags, name
        assert "--out" not in flags and "--no-progress" not in flags, name  # old spellings are hidden


@pytest.mark.parametrize("name", OPTICS_COMMANDS)
def test_optics_flags_are_identical_on_every_optics_command(name):
    p = _subparsers()[name]
    text = _help(p)
    for flag in OPTICS_FLAGS:
        assert flag in _visible_flags(p), (name, flag)
    assert "--wavelength-nm" not in text and "--pixel-size-um" not in text
    # the same units everywhere: nm for the wavelength, µm for the raw camera pixel
    assert "emission wavelength in nm" in text and "raw camera pixel size in the sample plane, in µm" in text


def test_optics_defaults_come_from_the_config_model():
    defaults = OpticsConfig()
    text = " ".join(_help(_subparsers()["simulate"]).split())
    for value in (defaults.na, defaults.wavelength_nm, defaults.pixel_size_um, defaults.refractive_index,
                  defaults.angles, defaults.phases, defaults.beams):
        assert f"(default {value})" in text, value
    args = build_parser().parse_args(["simulate", "-o", "x"])
    from srredsim.commands._options import optics_from_args

    assert optics_from_args(args) == defaults
    # a raw pixel size from the file fills in only what the flags leave open
    args = build_parser().parse_args(["reconstruct", "raw.tif", "-o", "sr.tif", "--na", "1.2"])
    o = optics_from_args(args, file_pixel_size_um=0.065)
    assert (o.na, o.pixel_size_um, o.wavelength_nm) == (1.2, 0.065, defaults.wavelength_nm)


def test_engine_choices_are_one_list():
    from srredsim.commands._options import ENGINE_CHOICES
    from srredsim.runtime.base import ENGINES

    assert ENGINE_CHOICES == ("auto", *ENGINES)
    subs = _subparsers()
    for name in ("predict", "fiji-check", "demo"):
        (engine,) = [a for a in subs[name]._actions if "--engine" in a.option_strings]
        assert tuple(engine.choices) == ENGINE_CHOICES and engine.default == "auto", name


def test_json_flag_everywhere_a_command_has_a_result_table():
    subs = _subparsers()
    for name in ("validate", "fiji-check", "info", "evaluate", "reconstruct"):
        assert "--json" in _visible_flags(subs[name]), name
    # --json alone prints JSON; the old --json FILE still names a file (with a note)
    args = build_parser().parse_args(["validate", "pkg.zip", "--json"])
    assert args.json is True and args.output_json is None
    args = build_parser().parse_args(["validate", "pkg.zip", "--json", "r.json"])
    assert args.json is False and str(args.output_json) == "r.json" and args._deprecated


@pytest.mark.parametrize("argv, dest, value", [
    (["predict", "m", "r.tif", "--out", "o.tif"], "output", "o.tif"),
    (["train", "data", "--out", "run"], "output", "run"),
    (["demo", "--out", "d"], "output", "d"),
    (["fiji-check", "p.zip", "r.tif", "--out", "d"], "output", "d"),
    (["fiji-check", "p.zip", "r.tif", "--wavelength-nm", "600"], "wavelength", 600.0),
    (["fiji-check", "p.zip", "r.tif", "--pixel-size-um", "0.1"], "pixel_size", 0.1),
    (["simulate", "-o", "d", "--no-progress"], "quiet", True),
    (["simulate", "d"], "legacy_output", "d"),
    (["evaluate", "t.tif", "r.tif", "-o", "d", "--pixel-size", "0.04"], "sr_pixel_size", 0.04),
])
def test_old_spellings_still_work_with_a_note(argv, dest, value):
    args = build_parser().parse_args(argv)
    got = getattr(args, dest)
    assert (str(got) if not isinstance(value, (bool, float)) else got) == value
    assert len(args._deprecated) == 1 and "old spelling" in args._deprecated[0]


def test_old_spelling_note_is_printed_once_on_stderr(tmp_path, capsys):
    from srredsim.cli import main

    assert main(["simulate", str(tmp_path / "d"), "--count", "1", "--size", "32", "--no-progress"]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "note:" in line]
    assert len(notes) == 2 and any("positional OUT" in n for n in notes) and any("--no-progress" in n for n in notes)


def test_evaluate_names_its_pixel_flag_for_what_it_is():
    text = _help(_subparsers()["evaluate"])
    assert "--sr-pixel-size" in text and "2x super-resolved grid" in " ".join(text.split())
    assert "--pixel-size" not in _visible_flags(_subparsers()["evaluate"])


def test_evaluate_refuses_to_replace_results_unless_overwrite(tmp_path, capsys):
    from srredsim.cli import main
    from srredsim.tiff import write_sr_image

    rng = np.random.default_rng(0)
    truth = rng.random((96, 96)).astype(np.float32)
    write_sr_image(tmp_path / "truth.tif", truth, raw_pixel_size_um=0.08)
    write_sr_image(tmp_path / "res.tif", truth + 0.01 * rng.random((96, 96)).astype(np.float32), raw_pixel_size_um=0.08)
    argv = ["evaluate", str(tmp_path / "truth.tif"), str(tmp_path / "res.tif"), "-o", str(tmp_path / "out"),
            "--no-figure", "--crop", "8"]
    assert main(argv) == 0
    assert main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite", "--json", "--quiet"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["name"] == "res" and rows[0]["psnr"] > 30


def test_recipes_module_speaks_the_same_vocabulary(tmp_path, capsys):
    from srredsim.recipes import main

    (tmp_path / "exists").mkdir()
    rc = main(["training-data", "-o", str(tmp_path / "exists"), "--count", "1", "--test-count", "0"])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert captured.err.strip().endswith("exists; pass --overwrite to replace it")
    assert len(captured.err.strip().splitlines()) == 1
    rc = main(["training-data", "--count", "1"])
    assert rc == 2 and "-o/--output" in capsys.readouterr().err
    rc = main(["training-data", "-o", str(tmp_path / "d"), "--count", "1", "--val-count", "0", "--size", "32",
               "--workers", "1", "--quiet", "--targets", "truth"])
    err = capsys.readouterr().err
    assert rc == 0 and "--val-count is the old spelling of --test-count" in err
    assert len(list((tmp_path / "d" / "trainx").iterdir())) == 1 and not list((tmp_path / "d" / "testx").iterdir())


def _config_values(section, field) -> tuple:
    """What the configuration accepts for a Literal field, read from its annotation (independently
    of srredsim.config.literal_choices, which the command line uses)."""
    import typing

    return typing.get_args(section.model_fields[field].annotation)


def test_train_architecture_flag_accepts_every_architecture_the_config_accepts(capsys):
    """`srredsim train --architecture` once offered only sr_redsim and unet although the
    configuration also has red_net. Every architecture the config accepts must parse, and give a
    valid configuration (the input channels follow the architecture); nothing is trained."""
    from srredsim.commands.train import run_config
    from srredsim.config import ModelConfig

    architectures = _config_values(ModelConfig, "architecture")
    assert {"sr_redsim", "unet", "red_net"} <= set(architectures)
    (flag,) = [a for a in _subparsers()["train"]._actions if "--architecture" in a.option_strings]
    assert set(flag.choices) == set(architectures)
    for arch in architectures:
        args = build_parser().parse_args(["train", "data", "-o", "run", "--architecture", arch])
        assert args.architecture == arch
        cfg = run_config(args)
        assert cfg.model.architecture == arch
        assert cfg.model.in_channels == (1 if arch == "red_net" else cfg.optics.frames), arch
    # the channels follow optics given with --set, and an explicit --set model.in_channels wins (and is checked)
    args = build_parser().parse_args(["train", "d", "-o", "r", "--architecture", "sr_redsim",
                                      "--set", "optics.phases=3"])
    assert run_config(args).model.in_channels == 9
    from srredsim.errors import SrredsimError

    # the same rule when the architecture comes from --set
    args = build_parser().parse_args(["train", "d", "-o", "r", "--set", "model.architecture=red_net"])
    assert run_config(args).model.in_channels == 1
    args = build_parser().parse_args(["train", "d", "-o", "r", "--architecture", "red_net",
                                      "--set", "model.in_channels=15"])
    with pytest.raises(SrredsimError, match="in_channels must be 1"):
        run_config(args)
    # what the config refuses, the command line refuses too
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "d", "-o", "r", "--architecture", "resnet"])
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


@pytest.mark.parametrize("flag, section, field", [
    ("--normalization", "NormalizationConfig", "mode"),
    ("--strategy", "TrainConfig", "strategy"),
])
def test_train_choice_flags_are_the_config_values(flag, section, field):
    """The other train flags with choices take them from the configuration too."""
    import srredsim.config as config

    values = _config_values(getattr(config, section), field)
    (action,) = [a for a in _subparsers()["train"]._actions if flag in a.option_strings]
    assert values and tuple(action.choices) == values
    for value in values:
        assert getattr(build_parser().parse_args(["train", "d", "-o", "r", flag, value]), action.dest) == value
