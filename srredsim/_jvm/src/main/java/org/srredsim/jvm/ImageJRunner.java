package org.srredsim.jvm;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.io.FileSaver;
import ij.measure.Calibration;
import ij.process.FloatProcessor;
import ij.process.ImageProcessor;

/**
 * What a DeepImageJ user does by hand: open a raw SIM stack in ImageJ 1.x, run the model on it,
 * and save the super-resolved result as an ImageJ TIFF whose pixel size is the raw pixel size
 * divided by the model's scale (2x for SR-REDSIM).
 *
 * The stack's planes (in ImageJ's stack order: channels fastest, then slices, then frames; the
 * angle-major / phase-fastest order of ARCHITECTURE §2 for a plain 15-plane stack) fill the
 * model's channel axis. Images whose size the model does not accept are padded by mirroring to
 * the next valid size (min + n*step) and the result is cropped back, as JDLL's tiling does.
 */
public final class ImageJRunner {
    private ImageJRunner() {}

    static long validSize(long n, long[] rule, String axis) {
        if (rule == null) return n;
        long min = rule[0];
        long step = rule[1];
        if (step == 0) {
            if (n > min) throw new IllegalArgumentException("axis " + axis + " must be exactly " + min + " pixels, image has " + n);
            return min;
        }
        if (n <= min) return min;
        return min + ((n - min + step - 1) / step) * step;
    }

    static int mirror(int i, int n) {
        if (n == 1) return 0;
        int period = 2 * (n - 1);
        i = Math.floorMod(i, period);
        return i < n ? i : period - i;
    }

    /** Build the model's input tensor from an ImagePlus; returns {tensor, H, W}. */
    static Tensor toTensor(ImagePlus imp, Rdf.TensorDescr d) {
        return toTensor(imp, d, true);
    }

    /** The input tensor of the image; with {@code pad}, y/x grown to the next valid size by mirroring. */
    static Tensor toTensor(ImagePlus imp, Rdf.TensorDescr d, boolean pad) {
        int w = imp.getWidth();
        int h = imp.getHeight();
        int n = imp.getStackSize();
        ImageStack stack = imp.getStack();
        float[][] planes = new float[n][];
        for (int i = 0; i < n; i++) {
            ImageProcessor ip = stack.getProcessor(i + 1);
            planes[i] = (float[]) ip.convertToFloatProcessor().getPixels();
        }
        boolean hasChannel = false;
        for (Rdf.Axis a : d.axes) hasChannel |= a.type.equals("channel");
        long[] shape = new long[d.axes.size()];
        int[] role = new int[shape.length]; // 0 batch/other(1), 1 plane, 2 y, 3 x
        for (int i = 0; i < shape.length; i++) {
            Rdf.Axis a = d.axes.get(i);
            long[] rule = a.sizeRule();
            if (a.type.equals("channel") || (!hasChannel && a.id.equals("z"))) {
                role[i] = 1;
                shape[i] = n;
                if (rule != null && rule[1] == 0 && rule[0] != n) {
                    throw new IllegalArgumentException("the model wants " + rule[0] + " " + a.id + " planes; the image has " + n
                            + " (a raw SIM stack of " + rule[0] + " frames is expected)");
                }
            } else if (a.id.equals("y")) {
                role[i] = 2;
                shape[i] = pad ? validSize(h, rule, "y") : h;
            } else if (a.id.equals("x")) {
                role[i] = 3;
                shape[i] = pad ? validSize(w, rule, "x") : w;
            } else {
                role[i] = 0;
                shape[i] = 1;
            }
        }
        float[] data = new float[(int) Tensor.size(shape)];
        long[] st = Tensor.strides(shape);
        for (int flat = 0; flat < data.length; flat++) {
            long rem = flat;
            int p = 0;
            int y = 0;
            int x = 0;
            for (int i = 0; i < shape.length; i++) {
                int c = (int) (rem / st[i]);
                rem -= (long) c * st[i];
                if (role[i] == 1) p = c;
                else if (role[i] == 2) y = mirror(c, h);
                else if (role[i] == 3) x = mirror(c, w);
            }
            data[flat] = planes[p][y * w + x];
        }
        return new Tensor(shape, data, d.axisIds());
    }

    /** Grow y/x of {@code t} to the next size the model accepts, mirroring at the far edges. */
    static Tensor padMirror(Tensor t, Rdf.TensorDescr d) {
        long[] shape = t.shape.clone();
        boolean any = false;
        for (int i = 0; i < shape.length; i++) {
            Rdf.Axis a = d.axes.get(i);
            if (a.id.equals("y") || a.id.equals("x")) {
                shape[i] = validSize(t.shape[i], a.sizeRule(), a.id);
                any |= shape[i] != t.shape[i];
            }
        }
        if (!any) return t;
        float[] data = new float[(int) Tensor.size(shape)];
        long[] st = Tensor.strides(shape);
        long[] src = Tensor.strides(t.shape);
        for (int flat = 0; flat < data.length; flat++) {
            long rem = flat;
            long idx = 0;
            for (int i = 0; i < shape.length; i++) {
                int c = (int) (rem / st[i]);
                rem -= (long) c * st[i];
                idx += (long) mirror(c, (int) t.shape[i]) * src[i];
            }
            data[flat] = t.data[(int) idx];
        }
        return new Tensor(shape, data, t.axes);
    }

    /** Turn the output tensor into an ImagePlus (one plane per channel), cropped to {@code scale * (H, W)}. */
    static ImagePlus toImage(Tensor t, Rdf.TensorDescr d, int h, int w, long[] inShape, Rdf.TensorDescr in) {
        int ay = t.axisIndex("y");
        int ax = t.axisIndex("x");
        if (ay < 0 || ax < 0) throw new IllegalArgumentException("output " + d.id + " has no y/x axes: " + d.axisIds());
        double fy = (double) t.shape[ay] / inShape[in.axisIds().indexOf("y")];
        double fx = (double) t.shape[ax] / inShape[in.axisIds().indexOf("x")];
        int oh = (int) Math.round(h * fy);
        int ow = (int) Math.round(w * fx);
        int ac = t.axisIndex("channel");
        int channels = ac >= 0 ? (int) t.shape[ac] : 1;
        long[] st = Tensor.strides(t.shape);
        ImageStack stack = new ImageStack(ow, oh);
        for (int c = 0; c < channels; c++) {
            float[] px = new float[ow * oh];
            for (int y = 0; y < oh; y++) {
                for (int x = 0; x < ow; x++) {
                    long idx = (long) y * st[ay] + (long) x * st[ax] + (ac >= 0 ? (long) c * st[ac] : 0);
                    px[y * ow + x] = t.data[(int) idx];
                }
            }
            stack.addSlice(channels > 1 ? "channel " + c : d.id, new FloatProcessor(ow, oh, px));
        }
        ImagePlus out = new ImagePlus(d.id, stack);
        out.setProperty("scale", new double[] {fy, fx});
        return out;
    }

    public static Map<String, Object> run(ModelPackage pkg, String format, Path input, Path output, Path saveDir)
            throws Exception {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("kind", "predict");
        r.put("engine", ModelPackage.engineOf(format));
        r.put("weights_format", format);
        if (pkg.rdf.inputs.size() != 1) throw new IllegalArgumentException("only single-input models run on a TIFF");
        if (!Files.exists(input)) throw new IllegalArgumentException(input + ": no such file");
        ImagePlus imp = IJ.openImage(input.toString());
        if (imp == null) throw new IllegalArgumentException(input + ": ImageJ cannot open this file");
        Rdf.TensorDescr in = pkg.rdf.inputs.get(0);
        // pre-processing statistics come from the image itself, not from its padding
        Tensor raw = toTensor(imp, in, false);
        Tensor pre = Processing.apply(in.processing, raw, Map.of(in.id, raw));
        // context beyond the border as the RDF declares it (halo, pad mode), then a size the model accepts
        Map<String, Integer> halo = Halo.inputHalos(pkg.rdf).get(in.id);
        Tensor x = padMirror(Halo.pad(pre, halo, Halo.padMode(in)), in);
        long[] inner = x.shape.clone();
        for (int i = 0; i < inner.length; i++) {
            Integer h = halo == null ? null : halo.get(in.axisIds().get(i));
            if (h != null) inner[i] -= 2L * h;
        }
        r.put("input", input.toString());
        r.put("input_shape", x.shape);
        long t0 = System.nanoTime();
        List<Tensor> outs = new ArrayList<>();
        try (Engine engine = pkg.load(format)) {
            r.put("engine_version", engine.version());
            List<String> outIds = new ArrayList<>();
            for (Rdf.TensorDescr d : pkg.rdf.outputs) outIds.add(d.id);
            List<Tensor> res = engine.run(List.of(x), List.of(in.id), outIds);
            Map<String, Tensor> all = new LinkedHashMap<>();
            all.put(in.id, raw);
            for (int i = 0; i < res.size(); i++) {
                Rdf.TensorDescr d = pkg.rdf.outputs.get(i);
                Tensor t = res.get(i);
                Check.checkRank(t, d, "model output");
                t.axes = d.axisIds();
                t = Halo.crop(t, Halo.outputHalo(d));
                all.put(d.id, t);
                outs.add(Processing.apply(d.processing, t, all));
            }
            if (saveDir != null) {
                Npy.write(saveDir.resolve("predict-" + in.id + "-preprocessed.npy"), x);
                Npy.write(saveDir.resolve("predict-" + pkg.rdf.outputs.get(0).id + ".npy"), outs.get(0));
            }
        }
        r.put("seconds", (System.nanoTime() - t0) / 1e9);
        ImagePlus out = toImage(outs.get(0), pkg.rdf.outputs.get(0), imp.getHeight(), imp.getWidth(), inner, in);
        double[] scale = (double[]) out.getProperty("scale");
        Calibration cin = imp.getCalibration();
        Calibration cal = new Calibration();
        cal.setUnit(cin.getUnit());
        cal.pixelWidth = cin.pixelWidth / scale[1];
        cal.pixelHeight = cin.pixelHeight / scale[0];
        cal.pixelDepth = cin.pixelDepth;
        out.setCalibration(cal);
        out.setTitle(output.getFileName().toString());
        Path parent = output.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        if (!new FileSaver(out).saveAsTiff(output.toString())) {
            throw new IllegalArgumentException(output + ": ImageJ could not save the result");
        }
        r.put("output", output.toString());
        r.put("output_shape", new long[] {out.getStackSize(), out.getHeight(), out.getWidth()});
        r.put("pixel_size_in", cin.pixelWidth);
        r.put("pixel_size_out", cal.pixelWidth);
        r.put("unit", cal.getUnit());
        r.put("status", "passed");
        r.put("ok", true);
        return r;
    }
}
