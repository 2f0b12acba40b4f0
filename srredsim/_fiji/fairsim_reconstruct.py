#@ File (label="Raw SIM stack (TIFF, angle-major, phases fastest)") raw
#@ File (label="Output TIFF", style="save") output
#@ Integer (label="Angles", value=3) angles
#@ Integer (label="Phases", value=5) phases
#@ Integer (label="Bands (2: two-beam SIM, 3: three-beam)", value=2) bands
#@ Double (label="Objective NA", value=1.4) na
#@ Double (label="Emission wavelength (nm)", value=525.0) wavelength_nm
#@ Double (label="Raw pixel size in um (0: from the image)", value=0.0) pixel_size_um
#@ Double (label="OTF attenuation a (fairSIM 'compensation')", value=0.31) otf_a
#@ Double (label="Wiener parameter", value=0.05) wiener
#@ Double (label="Apodization cutoff (x OTF support)", value=2.0) apo_cutoff
#@ Boolean (label="Zero-order attenuation", value=true) attenuation
#@ Double (label="Attenuation strength", value=0.99) att_strength
#@ Double (label="Attenuation FWHM (cycles/um)", value=1.2) att_fwhm
#@ Integer (label="Border fade (pixels)", value=15) fade
"""Classical SIM reconstruction of a raw stack with fairSIM (Mueller et al. 2016), headless.

Jython script for Fiji with the fairSIM plugin installed (fairSIM_plugin_*.jar in plugins/;
GPL-2.0, from the fairSIM release page). It does what fairSIM's GUI does with default settings:
estimated OTF (NA, wavelength, attenuation a), parameter estimation by cross-correlation (pattern
vector, phase, modulation), band separation, OTF-before-shift, generalised Wiener filter and
apodization; the result is a 2x larger 32-bit image saved as an ImageJ TIFF with half the raw
pixel size. srredsim.classical implements the same method in Python (docs/architecture.md, section 7).

Headless:
    ./ImageJ-linux64 --headless --console --run fairsim_reconstruct.py \
        'raw="/abs/raw.tif",output="/abs/fairsim_sr.tif",na=1.4,wavelength_nm=525.0'
(parameters not given take the defaults above). From Python: srredsim.fiji.run_fairsim, used by
`srredsim fiji-check`. Written against the fairSIM 1.4/1.5 API (org.fairsim.sim_algorithm);
images must be square, as fairSIM requires.

The file is Jython 2.7 and also parses as Python 3 (the test suite checks that).
"""
from __future__ import division

import java.lang.reflect.Array as JArray
from ij import IJ, ImagePlus
from ij.process import FloatProcessor
from org.fairsim.fiji import ImageVector
from org.fairsim.linalg import Transforms, Vec2d
from org.fairsim.sim_algorithm import OtfProvider, SimAlgorithm, SimParam, SimUtils


def _fail(msg):
    IJ.log("fairsim_reconstruct: " + msg)
    raise RuntimeError(msg)


imp = IJ.openImage(raw.getAbsolutePath())
if imp is None:
    _fail("cannot open " + raw.getAbsolutePath())
stack = imp.getStack()
w, h, n = imp.getWidth(), imp.getHeight(), stack.getSize()
if w != h:
    _fail("fairSIM needs square images; this one is %d x %d" % (w, h))
if n != angles * phases:
    _fail("%d planes, expected angles x phases = %d" % (n, angles * phases))
px = pixel_size_um
if px <= 0:
    cal = imp.getCalibration()
    unit = cal.getUnit()
    px = cal.pixelWidth * (1e-3 if unit == "nm" else 1.0)
if not (0.001 < px < 10):
    _fail("no usable pixel size (%r um): pass pixel_size_um" % px)

otf = OtfProvider.fromEstimate(na, wavelength_nm, otf_a)
param = SimParam.create(bands, angles, phases, w, px, otf)
otf.setAttenuation(att_strength, att_fwhm)
otf.switchAttenuation(attenuation)
for setter, value in (("setWienerFilter", wiener), ("setApoCutoff", apo_cutoff)):
    if hasattr(param, setter):
        getattr(param, setter)(value)
    else:
        IJ.log("fairsim_reconstruct: this fairSIM has no SimParam.%s; its default is used" % setter)

# input FFTs, [angle][phase]
in_fft = JArray.newInstance(Vec2d.Cplx, [angles, phases])
for i in range(n):
    img = ImageVector.copy(stack.getProcessor(i + 1))
    SimUtils.fadeBorderCos(img, fade)
    c = Vec2d.createCplx(w, h)
    c.copy(img)
    if hasattr(c, "fft2d"):
        c.fft2d(False)
    else:
        Transforms.fft2d(c, False)
    in_fft[i // phases][i % phases] = c

fit_band = 2 if bands == 3 else 1
SimAlgorithm.estimateParameters(param, in_fft, fit_band, 0.6, None, 0, None)
for a in range(angles):
    d = param.dir(a)
    try:
        IJ.log("fairSIM angle %d: k = (%.3f, %.3f) px, phase offset %.3f"
               % (a, d.px(1), d.py(1), d.getPhaOff()))
    except Exception:  # accessor names differ between fairSIM releases; logging is optional
        pass
result = SimAlgorithm.runReconstruction(param, in_fft, None, -1, True, SimParam.CLIPSCALE.NONE, None)

W, H = result.vectorWidth(), result.vectorHeight()
try:
    pixels = result.vectorData()
except AttributeError:
    pixels = [result.get(x, y) for y in range(H) for x in range(W)]
ip = FloatProcessor(W, H, pixels)
out = ImagePlus("fairSIM " + imp.getShortTitle(), ip)
cal = out.getCalibration()
cal.pixelWidth = px * w / W
cal.pixelHeight = px * h / H
cal.setUnit("micron")
IJ.saveAsTiff(out, output.getAbsolutePath())
IJ.log("fairsim_reconstruct: wrote " + output.getAbsolutePath())
