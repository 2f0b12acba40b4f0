// Run an SR-REDSIM bioimage.io package with DeepImageJ on a raw SIM stack and save the result.
// (A RED-fairSIM package takes one classical SIM reconstruction instead, e.g. fairSIM's result:
// give that image as input; the result has its size and pixel size.)
//
// Headless (no display needed):
//   ./ImageJ-linux64 --headless --console -macro deepimagej_run.ijm \
//       "model=/abs/path/SR-REDSIM,input=/abs/path/raw.tif,output=/abs/path/out"
//   (newer Fiji launchers are called fiji-linux-x64; same options)
// In the Fiji GUI: open the raw stack (or not), Plugins > Macros > Run... and answer the dialogs.
//
// model  : the UNZIPPED package folder (the one holding rdf.yaml), or the name of a model
//          installed in Fiji.app/models (DeepImageJ > Install Model, or unzip it there yourself)
// input  : the raw stack (TIFF: 15 planes for 3 angles x 5 phases, or 9 for 3 x 3; angle-major,
//          phases fastest). Without input the current image is used.
// output : folder for the result: <input name>_sr.tif (32-bit, twice the width and height, pixel
//          size half the raw one)
// batch  : "true" to keep images hidden (the default when headless)
//
// What it does, and why:
//  1. A raw stack as cameras write it is a plain TIFF of 15 (or 9) pages, which ImageJ opens as
//     z-slices; DeepImageJ would then run the model on each slice as a separate image (a batch of
//     15). The model wants the frames as *channels*, so the pages are made channels here
//     (Stack.setDimensions), after checking their number against the model's channel names.
//  2. DeepImageJ runs on that image (run("DeepImageJ Run", ...) without input_path) and saves
//     <title>_sr.tif in the output folder.
//  3. DeepImageJ saves the result without a pixel size: it is set here to the input's divided by
//     the model's scale (half the raw one for SR-REDSIM; the reconstruction's for RED-fairSIM).
//
// DeepImageJ macro syntax, by version (run("DeepImageJ Run", "<options>")):
//   3.1 and newer : model_path=[...] input_path=[...] output_folder=[...] display_output=null
//                   (model_path is required; without input_path the current image is used;
//                    display_output=all also shows the result)
//   3.0.x         : modelPath=[...] inputPath=[...] outputFolder=[...] displayOutput=null
//   2.x (old)     : model=[name] format=Tensorflow preprocessing=[...] postprocessing=[...]
//                   axes=Y,X,C tile=W,H,C logging=normal [model_dir=...]
//                   -- DeepImageJ 2 reads only bioimage.io format 0.3/0.4 and cannot run our
//                      format-0.5 packages: use DeepImageJ 3.
// Set KEYS below to "3.0" for DeepImageJ 3.0.x (or pass keys=3.0).

KEYS = "3.1";

args = getArgument();
model = ""; input = ""; output = ""; batch = "";
if (args != "") {
    parts = split(args, ",");
    for (i = 0; i < parts.length; i++) {
        eq = indexOf(parts[i], "=");
        if (eq < 1) continue;
        key = String.trim(substring(parts[i], 0, eq));
        value = String.trim(substring(parts[i], eq + 1));
        if (key == "model") model = value;
        if (key == "input") input = value;
        if (key == "output") output = value;
        if (key == "batch") batch = value;
        if (key == "keys") KEYS = value;
    }
}
if (batch == "true" || (batch == "" && getInfo("java.awt.headless") == "true")) setBatchMode(true);
if (model == "") model = getDirectory("Choose the unzipped SR-REDSIM package (folder with rdf.yaml)");
if (input == "" && nImages == 0) input = File.openDialog("Choose the raw SIM stack (TIFF)");
if (output == "") output = getDirectory("Choose the output folder");
if (!File.exists(model)) exit("model folder not found: " + model);
rdf = model + File.separator + "rdf.yaml";
if (!File.exists(rdf))
    print("note: " + model + " has no rdf.yaml; DeepImageJ will look for a model of that name in Fiji.app/models");
File.makeDirectory(output);

// 1. the image, with the raw frames as channels
if (input != "") {
    if (!File.exists(input)) exit("input not found: " + input);
    open(input);
}
frames = expectedFrames(rdf);
getDimensions(width, height, channels, slices, timepoints);
planes = channels * slices * timepoints;
if (frames == -1) {
    // RED-fairSIM: one classical reconstruction in, no frames to rearrange
    if (planes != 1)
        exit("this RED-fairSIM model takes one classical SIM reconstruction (e.g. fairSIM's result), not a "
             + planes + "-plane stack: reconstruct the raw stack first");
    frames = 0;
}
if (channels == 1 && planes > 1) {
    Stack.setDimensions(planes, 1, 1);   // the pages (z-slices or time points) become channels
    print("made the " + planes + " planes channels");
    channels = planes;
}
if (frames > 0 && channels != frames)
    exit("the image has " + channels + " channels (" + planes + " planes), the model expects " + frames
         + " raw frames (angle-major, phases fastest)");
getPixelSize(unit, pixelWidth, pixelHeight);
// DeepImageJ names its result <short title>_<output id>; use a title without spaces for a known name
title = getTitle();
dot = lastIndexOf(title, ".");
if (dot > 0) title = substring(title, 0, dot);
title = replace(title, " ", "_");
rename(title + ".tif");

// 2. DeepImageJ on the current image
if (KEYS == "3.0")
    options = "modelPath=[" + model + "] outputFolder=[" + output + "] displayOutput=null";
else
    options = "model_path=[" + model + "] output_folder=[" + output + "] display_output=null";
print("DeepImageJ Run " + options);
t0 = getTime();
run("DeepImageJ Run", options);
result = output + File.separator + title + "_sr.tif";
if (!File.exists(result)) exit("DeepImageJ wrote no " + result);
print("DeepImageJ finished in " + d2s((getTime() - t0) / 1000, 1) + " s");

// 3. the result's pixel size: the input's divided by the model's scale (its output pixels per input
//    pixel: 2 for SR-REDSIM, each raw pixel becomes 2 x 2; 1 for RED-fairSIM)
if (unit != "pixel" && unit != "pixels" && pixelWidth > 0) {
    open(result);
    scale = round(getWidth() / width);
    if (scale < 1) scale = 1;
    setVoxelSize(pixelWidth / scale, pixelHeight / scale, 1, unit);
    saveAs("Tiff", result);
    close();
}
print("result: " + result);

// The number of raw frames the package expects: its input channel names (a0p0, a0p1, ...);
// -1 for a RED-fairSIM package (its one input channel is named sim_reconstruction).
function expectedFrames(rdfPath) {
    if (!File.exists(rdfPath)) return 0;
    lines = split(File.openAsString(rdfPath), "\n");
    n = 0;
    for (i = 0; i < lines.length; i++) {
        line = String.trim(lines[i]);
        if (matches(line, "- *a[0-9]+p[0-9]+ *")) n++;
        if (matches(line, "- *sim_reconstruction *")) return -1;
    }
    return n;
}
