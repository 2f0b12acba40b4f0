"""The console script's quick exit (srredsim.cli.entry, exit_now, keep_until_exit): a finished
command ends at once, with its output flushed and its atexit handlers run, and without freeing
what the process is about to give back anyway."""

import subprocess
import sys
import textwrap

from srredsim.tiff import write_tiff


def _python(code: str, cwd):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_exit_now_flushes_and_runs_atexit_handlers_then_skips_the_teardown(tmp_path):
    r = _python("""
        import atexit, sys
        from pathlib import Path
        from srredsim.cli import exit_now

        atexit.register(lambda: Path("atexit.txt").write_text("ran"))

        class Freed:
            def __del__(self):
                Path("freed.txt").write_text("freed")

        kept = Freed()
        sys.stdout.write("result without a newline")
        sys.stderr.write("a note")
        exit_now(3)
        """, tmp_path)
    assert r.returncode == 3 and r.stdout == "result without a newline" and r.stderr == "a note"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert not (tmp_path / "freed.txt").exists()  # the interpreter's teardown was skipped
    r = _python(r.args[2].replace("exit_now(3)", "raise SystemExit(3)"), tmp_path)  # the normal exit frees it
    assert r.returncode == 3 and (tmp_path / "freed.txt").read_text() == "freed"


def test_exit_now_leaves_a_running_thread_to_the_normal_exit(tmp_path):
    r = _python("""
        import threading, time
        from pathlib import Path
        from srredsim.cli import exit_now

        def work():
            time.sleep(0.3)
            Path("thread.txt").write_text("finished")

        threading.Thread(target=work).start()
        exit_now(0)
        """, tmp_path)
    assert r.returncode == 0 and (tmp_path / "thread.txt").read_text() == "finished", r.stderr


def test_the_console_script_is_entry():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "srredsim"]
    assert script.value == "srredsim.cli:entry"


def test_entry_ends_at_once_only_after_a_command_that_kept_something(tmp_path):
    code = """
        KEEP = {keep}
        from pathlib import Path
        from srredsim import cli

        class Freed:
            def __del__(self):
                Path("freed.txt").write_text("freed")

        def command():
            opened = Freed()
            if KEEP:
                cli.keep_until_exit(opened)
            print("done", end="")
            return 4

        cli.main = command
        cli.entry()
        """
    r = _python(code.format(keep=True), tmp_path)
    assert r.returncode == 4 and r.stdout == "done", r.stderr
    assert not (tmp_path / "freed.txt").exists()  # kept until the process ended at once
    r = _python(code.format(keep=False), tmp_path)
    assert r.returncode == 4 and r.stdout == "done", r.stderr
    assert (tmp_path / "freed.txt").read_text() == "freed"  # nothing kept: the usual exit, which frees it


def test_predict_keeps_its_model_for_the_quick_exit_only(tmp_path, monkeypatch, capsys, trained_run):
    from srredsim import cli
    from srredsim.config import OpticsConfig
    from srredsim.runtime.handle import ModelHandle
    from srredsim.simulate import SimulationConfig, simulate_stack

    raw = tmp_path / "raw.tif"
    cfg = SimulationConfig(size=64, photons=100.0, optics=OpticsConfig(), k_fraction=(0.85, 0.86))
    write_tiff(raw, simulate_stack(cfg, seed=2, targets=[]).raw, pixel_size_um=0.08)
    monkeypatch.setattr(cli, "_KEPT", [])
    assert cli.main(["predict", str(trained_run), str(raw), "-o", str(tmp_path / "a.tif"), "--engine", "onnx"]) == 0
    assert cli._KEPT == []  # called from Python: the model is freed as usual
    monkeypatch.setattr(cli, "_QUICK_EXIT", True)  # as entry() sets it
    assert cli.main(["predict", str(trained_run), str(raw), "-o", str(tmp_path / "b.tif"), "--engine", "onnx"]) == 0
    assert len(cli._KEPT) == 1 and isinstance(cli._KEPT[0], ModelHandle)
