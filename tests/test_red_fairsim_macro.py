"""The shipped RED-fairSIM Fiji macro (srredsim/_fiji/red_fairsim_run.ijm), run headless in ImageJ 1.54p.

The file itself runs in ImageJ's macro interpreter (scyjava, as tests/test_imagej.py), not a copy:
the settings it computes for a raw stack (srredsim.classical's background: the 0.5th percentile of
the mean frame), the 'full result' slice it takes from a fairSIM result stack, the 32-bit
reconstruction it saves with half the raw pixel size, the exact ``run("DeepImageJ Run", ...)`` line
and the result it picks up. Neither fairSIM nor DeepImageJ is here: "DeepImageJ Run" is a stand-in
command registered in ImageJ's command table (as ``srredsim validate --deepimagej`` registers the
real one) that records its options and saves its input as ``<title>_sr.tif``, which is DeepImageJ's
contract. Skipped with the reason when scyjava, Java or the ImageJ jar is unavailable.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from srredsim.errors import SrredsimError
from srredsim.fiji import fiji_files_dir

MACRO = fiji_files_dir() / "red_fairsim_run.ijm"


def _why_not() -> str | None:
    try:
        import scyjava  # noqa: F401
    except ImportError:
        return "scyjava is not installed (pip install 'srredsim[test]')"
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        return "no Java on PATH / JAVA_HOME"
    try:
        from srredsim.imagej import imagej1_jar

        imagej1_jar()
    except SrredsimError as exc:
        return str(exc)
    return None


def test_macro_ships_with_the_package():
    text = MACRO.read_text()
    assert 'run("DeepImageJ Run"' in text and "model_path=[" in text and "input_path=[" in text
    assert "display_output=null" in text and "Mueller et al., Nat. Commun. 7, 10980" in text
    # the header says plainly what a macro cannot do with fairSIM
    assert "read no macro options" in text and "recon=" in text


_REASON = _why_not()
imagej_only = pytest.mark.skipif(_REASON is not None, reason=f"ImageJ 1.x unavailable: {_REASON}")

# the stand-in for DeepImageJ 3.1's command: records the options, saves the input as <title>_sr.tif
STUB = r"""
opts = call("ij.Macro.getOptions");
File.saveString(opts, "%(record)s");
function key(o, k) {
    i = indexOf(o, k + "=[");
    if (i < 0) return "";
    return substring(o, i + lengthOf(k) + 2, indexOf(o, "]", i));
}
inp = key(opts, "input_path"); if (inp == "") inp = key(opts, "inputPath");
out = key(opts, "output_folder"); if (out == "") out = key(opts, "outputFolder");
open(inp);
t = getTitle();
saveAs("Tiff", out + File.separator + substring(t, 0, lastIndexOf(t, ".")) + "_sr.tif");
close();
"""


@pytest.fixture(scope="module")
def IJ():
    from srredsim import imagej

    return imagej.start_imagej1()


@pytest.fixture
def commands(IJ):
    """ImageJ's command table, as Fiji has it: plain ImageJ 1.x builds it from AWT menus (impossible
    headless; its open() tries), Fiji's imagej-legacy fills it. An empty table stands in, as in
    ``srredsim validate --deepimagej``'s driver; restored afterwards."""
    import scyjava as sj

    field = sj.jimport("ij.Menus").class_.getDeclaredField("pluginsTable")
    field.setAccessible(True)
    before = field.get(None)
    table = before if before is not None else sj.jimport("java.util.Hashtable")()
    field.set(None, table)
    yield table
    from srredsim.imagej import run_macro

    run_macro('setBatchMode(true); close("*"); setBatchMode(false);')  # a clean JVM for the next test
    table.remove("DeepImageJ Run")
    if before is None:
        field.set(None, None)


@pytest.fixture
def deepimagej_stub(commands, tmp_path):
    """ "DeepImageJ Run" -> the stand-in macro; yields the file its options are recorded in."""
    record = tmp_path / "dij_options.txt"
    stub = tmp_path / "stub.ijm"
    stub.write_text(STUB % {"record": record.as_posix()})
    commands.put("DeepImageJ Run", f'ij.plugin.Macro_Runner("{stub.as_posix()}")')
    return record


def _run(arg: str, macro=None) -> str:
    """Run the shipped macro file (or ``macro``) with ``arg``: "done" or "exit" (the macro's exit()); a macro error
    (syntax or run time, which headless ImageJ would only show in a dialog) fails with its message."""
    import scyjava as sj

    interp = sj.jimport("ij.macro.Interpreter")()
    try:
        interp.run((macro or MACRO).read_text(), arg)
    except Exception as exc:
        if interp.wasError():
            raise AssertionError(f"{(macro or MACRO).name}: macro error in line {interp.getLineNumber()}: "
                                 f"{interp.getErrorMessage()}") from None
        if "Macro canceled" in str(exc):
            return "exit"
        raise
    return "done"


def _raw(tmp_path, phases=5, size=64, name="cells.tif"):
    from srredsim.tiff import write_tiff

    rng = np.random.default_rng(phases)
    raw = (rng.poisson(300, size=(3 * phases, size, size)) + 100 + 7 * np.arange(size)[None, None, :]).astype(np.uint16)
    return raw, write_tiff(tmp_path / name, raw, pixel_size_um=0.08)


def _fairsim_result(tmp_path, size=128, labels=("full result", "Widefield", "filtered Widefield")):
    """A stack as fairSIM shows its result ('Spatial images', labelled slices, no calibration)."""
    import jpype
    import scyjava as sj

    from srredsim.imagej import save_tiff

    ImageStack = sj.jimport("ij.ImageStack")
    FloatProcessor = sj.jimport("ij.process.FloatProcessor")
    ImagePlus = sj.jimport("ij.ImagePlus")
    rng = np.random.default_rng(3)
    planes = [rng.normal(10 * (i + 1), 5, size=(size, size)).astype(np.float32) for i in range(len(labels))]
    stack = ImageStack(size, size)
    for label, plane in zip(labels, planes):
        stack.addSlice(label, FloatProcessor(size, size, jpype.JArray(jpype.JFloat)(plane.ravel())))
    path = save_tiff(ImagePlus("Spatial images", stack), tmp_path / "fairsim_result.tif")
    return planes, path


def _model(tmp_path, channels=("in",), name="red-fairsim"):
    d = tmp_path / name
    d.mkdir()
    lines = ["format_version: 0.5.10", "inputs:", "- id: input", "  axes:", "  - type: channel", "    channel_names:"]
    d.joinpath("rdf.yaml").write_text("\n".join(lines + [f"    - {c}" for c in channels]) + "\n")
    return d


@imagej_only
@pytest.mark.parametrize("phases", [5, 3])
def test_settings_mode_computes_srredsim_background(commands, tmp_path, phases):
    raw, path = _raw(tmp_path, phases)
    out = tmp_path / "out"
    assert _run(f"mode=settings,input={path},output={out}") == "exit"  # stops after the settings
    text = (out / "cells_fairsim_settings.txt").read_text()
    expected = np.percentile(raw.astype(np.float32).mean(axis=0), 0.5)   # srredsim.classical.preprocess
    val = float(text.split("Use? yes, val ")[1].split()[0])
    assert val == pytest.approx(expected, abs=0.05)
    assert f"phases {phases}" in text and "beams 2" in text and "80.0 nm" in text
    assert "Wiener parameter 0.05" in text and "APO cutoff 2.0" in text and "a=0.30" in text
    assert "strength 0.9900, FWHM 1.20" in text and "'raw values'" in text and "128 x 128 px" in text
    assert "WARNING" not in text   # 64 x 64: square, a multiple of 32


@imagej_only
def test_settings_mode_warns_about_frames_fairsim_pads(commands, tmp_path):
    from srredsim.tiff import write_tiff

    path = write_tiff(tmp_path / "odd.tif", np.full((15, 40, 48), 200, np.uint16), pixel_size_um=0.08)
    _run(f"mode=settings,input={path},output={tmp_path}")
    text = (tmp_path / "odd_fairsim_settings.txt").read_text()
    assert "WARNING" in text and "32 x 32" in text


@imagej_only
@pytest.mark.parametrize("keys", ["3.1", "3.0"])
def test_run_takes_full_result_saves_it_and_calls_deepimagej(tmp_path, deepimagej_stub, keys):
    from srredsim.tiff import read_reference

    planes, recon = _fairsim_result(tmp_path)
    model = _model(tmp_path)
    out = tmp_path / "out dir"          # a space: the bracketed paths must survive it
    assert _run(f"model={model},recon={recon},output={out},pixel=0.08,keys={keys}") == "done"
    saved = out / "fairsim_result_fairsim.tif"
    data, meta = read_reference(saved)
    assert data.dtype == np.float32 and np.array_equal(data, planes[0])   # the 'full result' slice
    assert meta.pixel_size_um == pytest.approx(0.04)
    opts = deepimagej_stub.read_text()
    if keys == "3.1":
        assert opts.strip() == (f"model_path=[{model}] input_path=[{saved}] output_folder=[{out}] "
                                "display_output=null")
    else:
        assert opts.strip() == f"modelPath=[{model}] inputPath=[{saved}] outputFolder=[{out}] displayOutput=null"
    result, rmeta = read_reference(out / "fairsim_result_fairsim_sr.tif")
    assert np.array_equal(result, planes[0]) and rmeta.pixel_size_um == pytest.approx(0.04)


@imagej_only
def test_run_with_raw_stack_names_results_after_it(tmp_path, deepimagej_stub):
    """Raw stack and a single-plane reconstruction: names from the raw stack, pixel size from its calibration."""
    from srredsim.tiff import read_reference

    _, raw = _raw(tmp_path)
    planes, recon = _fairsim_result(tmp_path, labels=("full result",))
    out = tmp_path / "out"
    assert _run(f"model={_model(tmp_path)},input={raw},recon={recon},output={out}") == "done"
    assert (out / "cells_fairsim_settings.txt").is_file()
    data, meta = read_reference(out / "cells_fairsim.tif")
    assert np.array_equal(data, planes[0]) and meta.pixel_size_um == pytest.approx(0.04)
    assert (out / "cells_fairsim_sr.tif").is_file()


@imagej_only
def test_headless_without_reconstruction_says_fairsim_needs_its_gui(tmp_path, deepimagej_stub, capfd):
    _, raw = _raw(tmp_path)
    out = tmp_path / "out"
    assert _run(f"model={_model(tmp_path)},input={raw},output={out}") == "exit"
    said = capfd.readouterr()
    assert "cannot be run from a macro or headless" in said.out + said.err
    assert not deepimagej_stub.exists() and not list(out.glob("*.tif"))


@imagej_only
def test_sr_redsim_package_and_unlabelled_stack_are_refused(tmp_path, deepimagej_stub, capfd):
    _, recon = _fairsim_result(tmp_path)
    sr_redsim = _model(tmp_path, channels=[f"a{a}p{p}" for a in range(3) for p in range(5)], name="sr-redsim")
    assert _run(f"model={sr_redsim},recon={recon},output={tmp_path / 'o1'}") == "exit"
    assert "deepimagej_run.ijm" in capfd.readouterr().out
    (tmp_path / "m").mkdir()
    _, unlabelled = _fairsim_result(tmp_path / "m", labels=("a", "b"))
    assert _run(f"model={_model(tmp_path)},recon={unlabelled},output={tmp_path / 'o2'}") == "exit"
    assert "none is labelled 'full result'" in capfd.readouterr().out
    assert not deepimagej_stub.exists()


@imagej_only
def test_gui_path_starts_fairsim_waits_and_takes_its_result(tmp_path, deepimagej_stub, commands, capfd):
    """The Fiji-GUI branch, headless: the macro file with its three GUI-only calls swapped (batch
    mode kept on, waitForUser printed, the final display skipped); fairSIM's "new reconstruction"
    is a stand-in that opens a result window as fairSIM does ('Spatial images', 'full result')."""
    from srredsim.tiff import read_reference

    swaps = {'hidden = (batch == "true" || (batch == "" && headless));': "hidden = false;",
             "if (hidden) setBatchMode(true);": "setBatchMode(true);",
             "waitForUser(": "printDialog(",
             "if (!hidden) {\n    setBatchMode(false);": "if (false) {"}
    text = MACRO.read_text()
    for old, new in swaps.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    variant = tmp_path / "gui_variant.ijm"
    variant.write_text(text + '\nfunction printDialog(a, b) { print("waitForUser: " + a + " | " + b); }\n')
    fairsim = tmp_path / "fairsim_stub.ijm"
    fairsim.write_text('w = getWidth(); h = getHeight();\n'
                       'newImage("Spatial images", "32-bit ramp", 2 * w, 2 * h, 1);\n'
                       'setMetadata("Label", "full result");\n')
    commands.put("new reconstruction", f'ij.plugin.Macro_Runner("{fairsim.as_posix()}")')
    try:
        _, raw = _raw(tmp_path)
        out = tmp_path / "out"
        assert _run(f"model={_model(tmp_path)},input={raw},output={out}", macro=variant) == "done"
    finally:
        commands.remove("new reconstruction")
    said = capfd.readouterr().out
    assert "waitForUser: RED-fairSIM: run fairSIM now" in said and "background 399.0" in said
    assert "no negative values" in said   # a ramp: the note about fairSIM's clipping output modes
    data, meta = read_reference(out / "cells_fairsim.tif")
    assert data.shape == (128, 128) and meta.pixel_size_um == pytest.approx(0.04)
    assert "input_path=[" in deepimagej_stub.read_text() and (out / "cells_fairsim_sr.tif").is_file()
