// Run an SR-REDSIM bioimage.io package with DeepImageJ on a raw SIM stack and save the result.
//
// Headless (no display needed):
//   ./ImageJ-linux64 --headless --console -macro deepimagej_run.ijm \
//       "model=/abs/path/SR-REDSIM,input=/abs/path/raw.tif,output=/abs/path/out"
//   (newer Fiji launchers are called fiji-linux-x64; same options)
// In the Fiji GUI: Plugins > Macros > Run... and answer the three dialogs.
//
// model  : the UNZIPPED package folder (the one holding rdf.yaml), or the name of a model
//          installed in Fiji.app/models (DeepImageJ > Install Model, or unzip it there yourself)
// input  : the raw stack (TIFF, 15 planes: angle-major, phases fastest) or a folder of them
// output : folder for the results; DeepImageJ writes <input name>_sr.tif (32-bit, 2x larger)
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
// Set KEYS below to "3.0" for DeepImageJ 3.0.x.

KEYS = "3.1";

args = getArgument();
model = ""; input = ""; output = "";
if (args != "") {
    parts = split(args, ",");
    for (i = 0; i < parts.length; i++) {
        kv = split(parts[i], "=");
        if (kv.length < 2) continue;
        key = String.trim(kv[0]);
        value = String.trim(substring(parts[i], indexOf(parts[i], "=") + 1));
        if (key == "model") model = value;
        if (key == "input") input = value;
        if (key == "output") output = value;
    }
}
if (model == "") model = getDirectory("Choose the unzipped SR-REDSIM package (folder with rdf.yaml)");
if (input == "") input = File.openDialog("Choose the raw SIM stack (TIFF)");
if (output == "") output = getDirectory("Choose the output folder");
if (!File.exists(model)) exit("model folder not found: " + model);
if (!File.exists(model + File.separator + "rdf.yaml") && !File.exists(model + "/rdf.yaml"))
    print("note: " + model + " has no rdf.yaml; DeepImageJ will look for a model of that name in Fiji.app/models");
if (!File.exists(input)) exit("input not found: " + input);
File.makeDirectory(output);

if (KEYS == "3.0")
    options = "modelPath=[" + model + "] inputPath=[" + input + "] outputFolder=[" + output + "] displayOutput=null";
else
    options = "model_path=[" + model + "] input_path=[" + input + "] output_folder=[" + output + "] display_output=null";

print("DeepImageJ Run " + options);
t0 = getTime();
run("DeepImageJ Run", options);
print("DeepImageJ finished in " + d2s((getTime() - t0) / 1000, 1) + " s; results in " + output);
// The result keeps no pixel size in some DeepImageJ versions: the SR pixel size is half the raw one.
