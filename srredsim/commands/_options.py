"""The options the srredsim commands share: one spelling, one meaning and one default each.

Every command that writes takes ``-o/--output`` and ``--overwrite``; ``--quiet`` silences progress
and chatter (results still print); ``--json`` prints the command's result as JSON on stdout;
``--engine`` chooses from one list (:data:`ENGINE_CHOICES`); the optics flags ``--na --wavelength
--pixel-size --refractive-index --angles --phases --beams`` have the units and defaults of
:class:`srredsim.config.OpticsConfig`, on every command that takes optics (``--pixel-size`` is the
raw camera pixel in the sample plane, in µm, everywhere). Old spellings (``--out``,
``--wavelength-nm``, ``--no-progress``, ...) still work for one release: they are hidden from
``--help`` and print a one-line note that names the new spelling.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from srredsim.config import OpticsConfig
# The engines a model can run on and the precisions; ``auto`` lets the model handle choose. One
# list for predict, fiji-check and demo: a new engine is added where ENGINES is defined.
from srredsim.runtime.base import ENGINE_CHOICES, PRECISION_CHOICES  # noqa: E402

# OpticsConfig field <- command-line flag (and its dest); old spellings are hidden aliases.
OPTICS_FLAGS: dict[str, tuple[str, str]] = {
    "na": ("--na", "na"),
    "wavelength_nm": ("--wavelength", "wavelength"),
    "pixel_size_um": ("--pixel-size", "pixel_size"),
    "refractive_index": ("--refractive-index", "refractive_index"),
    "angles": ("--angles", "angles"),
    "phases": ("--phases", "phases"),
    "beams": ("--beams", "beams"),
}
_OPTICS_HELP = {
    "na": "objective numerical aperture",
    "wavelength_nm": "emission wavelength in nm",
    "pixel_size_um": "raw camera pixel size in the sample plane, in µm",
    "refractive_index": "refractive index of the immersion medium",
    "angles": "pattern angles in the stack",
    "phases": "phases per angle (frames are angle-major, phases fastest)",
    "beams": "interfering beams: 2 (2D-SIM) or 3",
}
_OPTICS_METAVARS = {"na": "NA", "wavelength_nm": "NM", "pixel_size_um": "UM", "refractive_index": "N",
                    "angles": "A", "phases": "P", "beams": None}
_OPTICS_TYPES = {"na": float, "wavelength_nm": float, "pixel_size_um": float, "refractive_index": float,
                 "angles": int, "phases": int, "beams": int}


def optics_default(field: str) -> Any:
    """The default of one optics field, read from :class:`OpticsConfig` (the one place it is written)."""
    return OpticsConfig.model_fields[field].default


class _Legacy(argparse.Action):
    """A hidden old spelling: stores into the new option's dest and records a note for the user."""

    def __init__(self, option_strings, dest, new: str = "", const=None, nargs=None, **kw):
        self.new = new
        super().__init__(option_strings, dest, nargs=nargs, const=const, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        note_deprecated(namespace, option_string or self.dest, self.new)


def note_deprecated(namespace, old: str, new: str) -> None:
    notes = getattr(namespace, "_deprecated", None) or []
    notes.append(f"{old} is the old spelling of {new}; it will be removed in the next release")
    namespace._deprecated = notes


def add_legacy(p, old: str, dest: str, new: str, *, flag: bool = False, type=None) -> None:
    """Accept ``old`` (hidden from --help) as another spelling of the option ``new``."""
    kw: dict[str, Any] = {"dest": dest, "help": argparse.SUPPRESS, "action": _Legacy, "new": new,
                          "default": argparse.SUPPRESS}
    if flag:
        kw.update(nargs=0, const=True)
    elif type is not None:
        kw["type"] = type
    p.add_argument(old, **kw)


class _LegacyPositional(argparse.Action):
    def __init__(self, option_strings, dest, new: str = "", **kw):
        self.new = new
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        if values is not None:
            note_deprecated(namespace, f"the positional {self.metavar or self.dest.upper()}", self.new)


def add_legacy_positional(p, dest: str, new: str, metavar: str) -> None:
    """An optional positional (hidden) kept from an old command line, e.g. ``simulate OUT``."""
    p.add_argument(dest, nargs="?", default=None, help=argparse.SUPPRESS, action=_LegacyPositional,
                   new=new, metavar=metavar)


def output_or_legacy(args, legacy_dest: str = "legacy_output"):
    """``-o/--output`` or the old positional; a one-line error when neither or both are given."""
    from srredsim.errors import SrredsimError

    legacy = getattr(args, legacy_dest, None)
    if legacy is not None and args.output is not None:
        raise SrredsimError(f"two outputs given ({legacy} and -o {args.output}); use -o/--output only")
    out = args.output if args.output is not None else legacy
    if out is None:
        raise SrredsimError("no output given: pass -o/--output")
    return Path(out)


def add_output(p, help: str, *, required: bool = False, legacy: tuple[str, ...] = (), default=None,
               metavar: str = "PATH") -> None:
    """``-o/--output`` (``legacy`` spellings such as ``--out`` stay as hidden aliases)."""
    target = p.add_mutually_exclusive_group(required=required) if required and legacy else p
    target.add_argument("-o", "--output", type=Path, default=default, required=required and not legacy,
                        metavar=metavar, help=help)
    for old in legacy:
        add_legacy(target, old, "output", "-o/--output", type=Path)


def add_overwrite(p, what: str = "an existing output") -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what}")


def add_quiet(p, legacy_no_progress: bool = False) -> None:
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars or progress messages (results and errors still print)")
    if legacy_no_progress:
        add_legacy(p, "--no-progress", "quiet", "--quiet", flag=True)


class _JsonFlag(argparse.Action):
    """``--json`` prints JSON on stdout; the old ``--json FILE`` (validate, fiji-check) still writes FILE."""

    def __call__(self, parser, namespace, values, option_string=None):
        if values is None:
            namespace.json = True
            return
        if getattr(namespace, "output_json", None) is not None:
            parser.error("--json FILE given twice")
        namespace.output_json = Path(values)
        note_deprecated(namespace, "--json FILE", "-o/--output FILE (and --json prints JSON on stdout)")


def add_json(p, what: str = "the results", legacy_file: bool = False) -> None:
    help = f"print {what} as JSON on stdout instead of a table"
    if legacy_file:
        p.add_argument("--json", nargs="?", default=False, const=None, action=_JsonFlag, metavar="",
                       help=help)
        p.set_defaults(output_json=None)
    else:
        p.add_argument("--json", action="store_true", help=help)


def add_engine(p, default: str = "auto", help: str | None = None, choices: tuple[str, ...] = ENGINE_CHOICES) -> None:
    p.add_argument("--engine", choices=list(choices), default=default,
                   help=help or "inference engine; auto = the fastest of onnx and openvino for this model on this "
                                "machine (measured once, kept in the per-user cache)")


def add_precision(p, default: str = "auto") -> None:
    p.add_argument("--precision", choices=list(PRECISION_CHOICES), default=default,
                   help="arithmetic; auto = bf16 where the CPU computes it natively (AMX, AVX512-BF16) and the output "
                        "stays within 65 dB PSNR of fp32 on the model's test tensor, else fp32; int8 (openvino only, "
                        "needs the int8 extra): the network quantised once, ~1.8x bf16 with VNNI, less exact "
                        "(docs/runtime.md)")


def add_optics(p, *, pixel_size_default: str | None = None, others_default: str | None = None,
               legacy: bool = False) -> argparse._ArgumentGroup:
    """The optics flags (all default to None: :func:`optics_from_args` fills what was not given).

    ``pixel_size_default`` / ``others_default`` replace the "default ..." wording in the help
    where a command takes the value from elsewhere first (the TIFF, the model).
    """
    g = p.add_argument_group("optics of the raw data (srredsim.config.OpticsConfig)")
    for field, (flag, dest) in OPTICS_FLAGS.items():
        if field == "pixel_size_um" and pixel_size_default:
            default_text = pixel_size_default
        elif others_default and field != "pixel_size_um":
            default_text = others_default
        else:
            default_text = f"default {optics_default(field)}"
        kw: dict[str, Any] = {"type": _OPTICS_TYPES[field], "default": None, "dest": dest,
                              "metavar": _OPTICS_METAVARS[field], "help": f"{_OPTICS_HELP[field]} ({default_text})"}
        if field == "beams":
            kw["choices"] = [2, 3]
        g.add_argument(flag, **kw)
    if legacy:  # fiji-check's old spellings
        add_legacy(g, "--wavelength-nm", "wavelength", "--wavelength", type=float)
        add_legacy(g, "--pixel-size-um", "pixel_size", "--pixel-size", type=float)
    return g


def optics_given(args) -> dict[str, Any]:
    """The optics fields whose flags were given, as OpticsConfig keyword arguments."""
    out = {}
    for field, (_, dest) in OPTICS_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            out[field] = value
    return out


def optics_from_args(args, *, file_pixel_size_um: float | None = None, base: OpticsConfig | None = None
                     ) -> OpticsConfig:
    """Optics from the flags given, else the TIFF's pixel size, else ``base`` (e.g. a model's), else
    the defaults of :class:`OpticsConfig`; unphysical values are a one-line error."""
    from srredsim.optics import resolve_optics

    return resolve_optics(optics_given(args), file_pixel_size_um=file_pixel_size_um, base=base)


def deprecation_notes(args) -> list[str]:
    return list(getattr(args, "_deprecated", None) or [])



def json_text(obj: Any) -> str:
    """Strict JSON for ``--json`` (see :func:`srredsim.errors.json_text`)."""
    from srredsim.errors import json_text as _json_text

    return _json_text(obj)
