// RED-fairSIM in Fiji: the classical fairSIM reconstruction of a raw SIM stack, then the RED-fairSIM
// denoiser (a bioimage.io package run by DeepImageJ) on that reconstruction. Both images are saved.
//
// RED-fairSIM is the second method of Shah et al., Photonics Research 9, B168 (2021): a RED-Net that
// removes the noise and reconstruction artifacts of a classical SIM reconstruction. fairSIM is the
// classical reconstruction of Mueller et al., Nat. Commun. 7, 10980 (2016). The package
// `red-fairsim` (bioimage_model/red-fairsim.bioimageio.zip) was trained on reconstructions made by
// srredsim.classical; the fairSIM settings that reproduce them are printed by this macro and listed
// in docs/fiji.md, section "RED-fairSIM in Fiji: fairSIM, then DeepImageJ".
//
// WHAT A MACRO CANNOT DO: fairSIM's menu commands (Plugins > fairSIM > ...) open fairSIM's own
// Swing windows and read no macro options, so a macro can neither set fairSIM's parameters nor run
// its reconstruction, and nothing of it runs headless. This macro therefore does the rest:
//   * in the Fiji GUI it opens the raw stack, computes the settings that match srredsim (the
//     background value, the pixel size), prints them, starts fairSIM's "new reconstruction" window
//     if fairSIM is installed, and waits while you run fairSIM by hand (steps below); when you click
//     OK it takes fairSIM's result window ("Spatial images", slice "full result");
//   * with recon=... (GUI or headless) it takes a reconstruction you already made with fairSIM and
//     saved as TIFF (the whole "Spatial images" stack or just its "full result" slice);
// then it saves the reconstruction as 32-bit <name>_fairsim.tif with half the raw pixel size, runs
//   run("DeepImageJ Run", "model_path=[...] input_path=[<name>_fairsim.tif] output_folder=[...] display_output=null")
// and gives DeepImageJ's result (<name>_fairsim_<output id>.tif, same size) the same pixel size.
//
// Headless (the reconstruction made beforehand in fairSIM's GUI and saved):
//   ./ImageJ-linux64 --headless --console -macro red_fairsim_run.ijm \
//       "model=/abs/Fiji.app/models/red-fairsim,recon=/abs/fairsim_result.tif,output=/abs/out,pixel=0.08"
// Only the settings (headless too): "mode=settings,input=/abs/raw.tif,output=/abs/out"
// In the Fiji GUI: Plugins > Macros > Run... (with the raw stack open, or answer the dialogs).
//
// Arguments (key=value, comma-separated; all optional in the GUI, where dialogs ask):
//   model  : the UNZIPPED red-fairsim package (the folder holding rdf.yaml), or the name of a model
//            installed in Fiji.app/models
//   input  : the raw stack (TIFF; 9 planes = 3 angles x 3 phases or 15 = 3 x 5, angle-major with
//            phases fastest). Without input and recon, the active image is used.
//   recon  : a saved fairSIM reconstruction (skips the fairSIM step; required headless)
//   output : the output folder
//   pixel  : raw camera pixel size in micrometres (else taken from the raw stack's calibration)
//   na, wavelength : objective NA and emission wavelength in nm, only printed into the settings
//            (defaults 1.4 and 525; use your microscope's)
//   mode   : run (default) or settings (print and save the fairSIM settings for the raw stack, stop)
//   batch  : "true" keeps images hidden (the default headless); keys : "3.0" for DeepImageJ 3.0.x
//
// The fairSIM steps by hand (labels of the fairSIM versions whose sources we read; they may differ
// slightly in yours). Values in <> come from the settings this macro prints:
//   1. Plugins > fairSIM > new reconstruction: Type/Img.Seq. "p,a,z (def)", beams 2, angles 3,
//      phases 5 (or 3 for a 9-plane stack), Set.
//   2. "1 - Image Selector": Img = the raw stack, import. In "Image import settings": pixel size
//      <raw pixel size> nm; Background substraction: Use? yes, val <background>; Import.
//      (If there is a "Corrections" tab: estimate by average, click "angles", then "phases".)
//   3. "2 - OTF": Approximate: NA and lambda of your microscope, Comp "a=0.30", Type EXPONENTIAL, Set.
//   4. "4 - Attenuation (optional)": Use? yes; set: strength 0.9900, FWHM 1.20, Set.
//   5. "3 - Parameter estimation": run (default settings), check the fit summary.
//   6. "5 - Reconstruction": setup: Intermediate results "result only", Output "raw values",
//      Filter type "Wiener filter", Wiener parameter 0.05, APO cutoff 2.0 (APO bend 0.9 where the
//      dialog has it), Set; then run. The result appears as "Spatial images", slice "full result".
// The stack must be square with a side that is a multiple of 32 (e.g. 512 x 512): fairSIM's GUI
// pads other sizes, and the result is then no longer twice the raw frame.
//
// DeepImageJ macro keys: 3.1 and newer model_path/input_path/output_folder/display_output;
// 3.0.x modelPath/inputPath/outputFolder/displayOutput (keys=3.0); DeepImageJ 2.x cannot read
// bioimage.io format-0.5 packages.

KEYS = "3.1";

args = getArgument();
model = ""; input = ""; recon = ""; output = ""; pixel = ""; batch = ""; mode = "run";
na = "1.4"; wavelength = "525";
if (args != "") {
    parts = split(args, ",");
    for (i = 0; i < parts.length; i++) {
        eq = indexOf(parts[i], "=");
        if (eq < 1) continue;
        key = String.trim(substring(parts[i], 0, eq));
        value = String.trim(substring(parts[i], eq + 1));
        if (key == "model") model = value;
        else if (key == "input") input = value;
        else if (key == "recon") recon = value;
        else if (key == "output") output = value;
        else if (key == "pixel") pixel = value;
        else if (key == "batch") batch = value;
        else if (key == "keys") KEYS = value;
        else if (key == "mode") mode = value;
        else if (key == "na") na = value;
        else if (key == "wavelength") wavelength = value;
        else exit("red_fairsim_run: unknown argument '" + key + "'");
    }
}
if (mode != "run" && mode != "settings") exit("red_fairsim_run: mode must be run or settings, not '" + mode + "'");
headless = (getInfo("java.awt.headless") == "true");
hidden = (batch == "true" || (batch == "" && headless));
if (hidden) setBatchMode(true);

// ---- the raw stack (for the settings) and, if given, the reconstruction -------------------------
rawID = 0; reconID = 0;
if (input != "") {
    if (!File.exists(input)) exit("input not found: " + input);
    open(input);
    rawID = getImageID();
}
if (recon != "") {
    if (!File.exists(recon)) exit("recon not found: " + recon);
    open(recon);
    reconID = getImageID();
} else if (rawID == 0 && nImages > 0) {
    if (isFairsimResult()) reconID = getImageID();
    else if (isRawStack()) rawID = getImageID();
}
if (rawID == 0 && reconID == 0 && !hidden) {
    input = File.openDialog("Choose the raw SIM stack (TIFF)");
    open(input);
    rawID = getImageID();
}
if (rawID == 0 && (reconID == 0 || mode == "settings"))
    exit("red_fairsim_run: no raw SIM stack (input=...) and no fairSIM reconstruction (recon=...)");

rawPixel = NaN;
if (pixel != "") {
    rawPixel = parseFloat(pixel);
    if (isNaN(rawPixel) || rawPixel <= 0) exit("pixel must be the raw pixel size in micrometres, not '" + pixel + "'");
}
name = "";
rawW = 0; rawH = 0;
if (rawID != 0) {
    selectImage(rawID);
    name = baseName(getTitle());
    if (!isRawStack())
        exit("the raw stack must have 9 or 15 planes (3 angles x 3 or 5 phases); " + getTitle() + " has " + nSlices);
    rawW = getWidth(); rawH = getHeight();
    if (isNaN(rawPixel)) rawPixel = micronsPerPixel();
    else setVoxelSize(rawPixel, rawPixel, 1, "micron");  // fairSIM's import reads the calibration
}
if (output == "" && !hidden && mode == "run") output = getDirectory("Choose the output folder");
if (output != "") File.makeDirectory(output);

// ---- the fairSIM settings that match srredsim.classical ---------------------------------------
if (rawID != 0) {
    selectImage(rawID);
    phases = nSlices / 3;
    background = meanFramePercentile(0.5);
    pxText = "unknown: set it in fairSIM's import dialog (and pass pixel=... here)";
    if (!isNaN(rawPixel)) pxText = d2s(rawPixel * 1000, 1) + " nm";
    s = "fairSIM settings matching srredsim.classical (the reconstructions RED-fairSIM was trained on)\n"
      + "raw stack: " + getTitle() + ", " + rawW + " x " + rawH + " px, " + nSlices + " planes (3 angles x "
      + phases + " phases), pixel size " + pxText + "\n"
      + "1 new reconstruction : Type/Img.Seq. p,a,z (def); beams 2; angles 3; phases " + phases + "\n"
      + "2 Image Selector     : import; pixel size " + pxText + "; Background substraction: Use? yes, val "
      + d2s(background, 1) + "\n"
      + "                       (Corrections tab, if present: estimate by average, 'angles', then 'phases')\n"
      + "3 OTF > Approximate  : NA " + na + ", lambda " + wavelength + " nm (use your microscope's), Comp a=0.30, Type EXPONENTIAL\n"
      + "4 Attenuation        : Use? yes; set: strength 0.9900, FWHM 1.20 (cycles/um)\n"
      + "5 Parameter estim.   : run (defaults)\n"
      + "6 Reconstruction     : setup: Intermediate results 'result only', Output 'raw values', Filter type\n"
      + "                       'Wiener filter', Wiener parameter 0.05, APO cutoff 2.0 (APO bend 0.9); run\n"
      + "result               : window 'Spatial images', slice 'full result', " + (2 * rawW) + " x " + (2 * rawH)
      + " px (32-bit)\n";
    if (rawW != rawH || rawW % 32 != 0)
        s = s + "WARNING: fairSIM's GUI pads frames that are not square with a side divisible by 32; crop the stack\n"
              + "         to e.g. " + (32 * floor(minOf(rawW, rawH) / 32)) + " x " + (32 * floor(minOf(rawW, rawH) / 32))
              + " first (Image > Crop on all planes).\n";
    if (background > 5000)
        s = s + "NOTE: fairSIM's background field may stop at 5000; subtract a constant first (Process > Math > Subtract).\n";
    print(s);
    if (output != "") File.saveString(s, joinPath(output, name + "_fairsim_settings.txt"));
    if (mode == "settings") exit();
}

// ---- the reconstruction: given, already open, or made now in fairSIM's GUI ---------------------
if (reconID == 0) {
    reconID = findFairsimResult(rawW);
    if (reconID != 0) {
        selectImage(reconID);
        print("using the open fairSIM result '" + getTitle() + "' (close it to reconstruct anew)");
    }
}
if (reconID == 0) {
    if (hidden)
        exit("fairSIM cannot be run from a macro or headless (its commands open their own windows and read\n"
             + "no macro options). Reconstruct in fairSIM's GUI with the settings above, save the result\n"
             + "('Spatial images', or its 'full result' slice) as TIFF and pass recon=/path/to/it.tif");
    List.setCommands;
    if (List.get("new reconstruction") != "") run("new reconstruction");
    else print("fairSIM is not installed (Plugins > fairSIM is missing): install fairSIM_plugin_*.jar first");
    waitForUser("RED-fairSIM: run fairSIM now",
        "Reconstruct " + name + " in fairSIM with the settings printed in the Log window\n"
        + "(beams 2; background " + d2s(background, 1) + "; OTF a=0.30; attenuation on, 0.99 / 1.2;\n"
        + "Wiener 0.05; APO cutoff 2.0; Output 'raw values'; Intermediate results 'result only').\n \n"
        + "When fairSIM's result ('Spatial images', 'full result') is open, click OK.");
    reconID = findFairsimResult(rawW);
    if (reconID == 0) exit("no fairSIM result found: expected an image with a slice labelled 'full result'"
                           + " (or a single 32-bit image of " + (2 * rawW) + " x " + (2 * rawH) + " px)");
}

if (model == "" && !hidden) model = getDirectory("Choose the unzipped red-fairsim package (folder with rdf.yaml)");
if (model == "") exit("red_fairsim_run: model=... is needed (the unzipped red-fairsim package)");
if (output == "") exit("red_fairsim_run: output=... is needed");
rdf = joinPath(model, "rdf.yaml");
if (File.exists(rdf)) {
    if (rawFrameChannels(rdf) > 0)
        exit(model + " is an SR-REDSIM package (its input is the raw stack): use deepimagej_run.ijm for it;"
             + " this macro runs RED-fairSIM, whose input is the reconstruction");
} else if (!File.exists(model)) {
    print("note: " + model + " is not a folder; DeepImageJ will look for a model of that name in Fiji.app/models");
} else {
    exit(model + " has no rdf.yaml: unzip the package so that rdf.yaml lies directly in that folder");
}
if (!hidden) setBatchMode(true);

// ---- one 32-bit plane: the 'full result' slice ----------------------------------------------------
selectImage(reconID);
if (name == "") name = baseName(getTitle());
if (name == "" || name == "Spatial_images") name = "reconstruction";
pick = 0;
for (i = 1; i <= nSlices; i++) {
    setSlice(i);
    if (startsWith(sliceLabel(), "full result")) pick = i;
}
if (pick == 0 && nSlices > 1)
    exit(getTitle() + " has " + nSlices + " planes and none is labelled 'full result': save fairSIM's result"
         + " stack unchanged, or pass its SIM plane alone");
if (pick == 0) pick = 1;
setSlice(pick);
rw = getWidth(); rh = getHeight(); depth = bitDepth();
if (depth == 24) exit("the reconstruction is an RGB image; RED-fairSIM needs fairSIM's 32-bit result");
if (depth == 8) print("note: the reconstruction is 8-bit (fairSIM Output 'clip&scale'?); 'raw values' keeps what the network was trained on");
if (isNaN(rawPixel)) {
    p = micronsPerPixel();
    if (!isNaN(p)) rawPixel = 2 * p;   // a reconstruction that already carries its (half) pixel size
}
if (rawW > 0 && (rw != 2 * rawW || rh != 2 * rawH))
    print("warning: the reconstruction is " + rw + " x " + rh + " px, not twice the raw " + rawW + " x " + rawH
          + " (fairSIM pads frames that are not square with a side divisible by 32)");
values = newArray(rw * rh);
k = 0; negatives = 0;
for (y = 0; y < rh; y++) for (x = 0; x < rw; x++) {
    v = getPixel(x, y);
    values[k] = v; k++;
    if (v < 0) negatives++;
}
if (negatives == 0)
    print("note: the reconstruction has no negative values (fairSIM Output 'clip zeros' or 'clip&scale'?);"
          + " the training reconstructions kept them ('raw values')");
title = name + "_fairsim";
newImage(title, "32-bit black", rw, rh, 1);
k = 0;
for (y = 0; y < rh; y++) for (x = 0; x < rw; x++) { setPixel(x, y, values[k]); k++; }
if (!isNaN(rawPixel)) setVoxelSize(rawPixel / 2, rawPixel / 2, 1, "micron");
else print("note: pixel size unknown (pass pixel=... , the raw pixel size in micrometres); the results carry none");
reconPath = joinPath(output, title + ".tif");
saveAs("Tiff", reconPath);
close();
print("fairSIM reconstruction: " + reconPath);

// ---- DeepImageJ: the RED-fairSIM package on the saved reconstruction -----------------------------
before = getFileList(output);
if (KEYS == "3.0")
    options = "modelPath=[" + model + "] inputPath=[" + reconPath + "] outputFolder=[" + output + "] displayOutput=null";
else
    options = "model_path=[" + model + "] input_path=[" + reconPath + "] output_folder=[" + output + "] display_output=null";
print("DeepImageJ Run " + options);
t0 = getTime();
run("DeepImageJ Run", options);
// DeepImageJ saves <input title>_<output tensor id>.tif: the file of that form written just now
result = "";
after = getFileList(output);
for (i = 0; i < after.length; i++) {
    f = after[i];
    if (!endsWith(f, ".tif") || !startsWith(f, title + "_")) continue;
    isNew = true;
    for (j = 0; j < before.length; j++) if (before[j] == f) isNew = false;
    if (isNew || File.lastModified(joinPath(output, f)) >= t0 - 2000) result = joinPath(output, f);
}
if (result == "") exit("DeepImageJ wrote no " + title + "_<output>.tif into " + output);
print("DeepImageJ finished in " + d2s((getTime() - t0) / 1000, 1) + " s");
if (!isNaN(rawPixel)) {
    open(result);
    setVoxelSize(rawPixel / 2, rawPixel / 2, 1, "micron");
    saveAs("Tiff", result);
    close();
}
print("RED-fairSIM result: " + result);
if (!hidden) {
    setBatchMode(false);
    open(reconPath);
    open(result);
}

// ---- helpers --------------------------------------------------------------------------------------

// A raw SIM stack: 9 or 15 planes (3 angles x 3 or 5 phases).
function isRawStack() {
    getDimensions(w, h, c, z, t);
    n = c * z * t;
    return (n == 9 || n == 15);
}

// The current image holds fairSIM's SIM result: a plane labelled 'full result'.
function isFairsimResult() {
    cur = getSliceNumber();
    found = false;
    for (s = 1; s <= nSlices; s++) {
        setSlice(s);
        if (startsWith(sliceLabel(), "full result")) found = true;
    }
    setSlice(cur);
    return found;
}

// The most recent open fairSIM result; else the active image if it is one 2D plane twice the raw width.
function findFairsimResult(rawWidth) {
    if (nImages == 0) return 0;
    active = getImageID();
    id = 0;
    for (m = 1; m <= nImages; m++) {
        selectImage(m);
        if (isFairsimResult()) id = getImageID();
    }
    selectImage(active);
    if (id == 0 && rawWidth > 0 && nSlices == 1 && getWidth() == 2 * rawWidth && bitDepth() == 32) id = active;
    return id;
}

// The label of the current plane (single images keep it in the "Label" property).
function sliceLabel() {
    label = getInfo("slice.label");
    if (label == "") label = getMetadata("Label");
    return String.trim(label);
}

// The pixel width in micrometres, NaN when the image has no spatial calibration.
function micronsPerPixel() {
    getPixelSize(unit, pw, ph);
    if (unit == "nm") return pw / 1000;
    if (unit == "micron" || unit == "microns" || unit == "um" || unit == fromCharCode(181) + "m") return pw;
    return NaN;
}

// srredsim.classical's background: the p-th percentile (linear interpolation, as numpy) of the
// mean over all planes of the current stack.
function meanFramePercentile(p) {
    w = getWidth(); h = getHeight(); n = nSlices;
    cur = getSliceNumber();
    acc = newArray(w * h);
    for (s = 1; s <= n; s++) {
        setSlice(s);
        q = 0;
        for (y = 0; y < h; y++) for (x = 0; x < w; x++) { acc[q] += getPixel(x, y); q++; }
    }
    setSlice(cur);
    for (q = 0; q < acc.length; q++) acc[q] /= n;
    Array.sort(acc);
    pos = (acc.length - 1) * p / 100;
    lo = floor(pos);
    if (lo + 1 >= acc.length) return acc[acc.length - 1];
    return acc[lo] + (pos - lo) * (acc[lo + 1] - acc[lo]);
}

// The number of raw-frame channels (a0p0, a0p1, ...) an SR-REDSIM package's rdf.yaml names.
function rawFrameChannels(rdfPath) {
    lines = split(File.openAsString(rdfPath), "\n");
    c = 0;
    for (l = 0; l < lines.length; l++)
        if (matches(String.trim(lines[l]), "- *a[0-9]+p[0-9]+ *")) c++;
    return c;
}

// An image title without its extension, spaces replaced (DeepImageJ names its result after it).
function baseName(t) {
    dot = lastIndexOf(t, ".");
    if (dot > 0) t = substring(t, 0, dot);
    return replace(t, " ", "_");
}

function joinPath(dir, file) {
    if (endsWith(dir, "/") || endsWith(dir, File.separator)) return dir + file;
    return dir + File.separator + file;
}
