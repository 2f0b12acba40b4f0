package org.srredsim.jvm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** A dense float32 tensor in C (row-major) order with named axes, as the engines see it. */
public final class Tensor {
    public final long[] shape;
    public final float[] data;
    /** axis ids in the order of {@link #shape} (e.g. batch, y, x, channel); may be null. */
    public List<String> axes;

    public Tensor(long[] shape, float[] data, List<String> axes) {
        long n = size(shape);
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + n
                    + " values, data has " + data.length);
        }
        this.shape = shape.clone();
        this.data = data;
        this.axes = axes == null ? null : new ArrayList<>(axes);
    }

    public static long size(long[] shape) {
        long n = 1;
        for (long s : shape) {
            if (s < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            n *= s;
        }
        if (n > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("tensor too large: " + n + " elements");
        return n;
    }

    public int rank() {
        return shape.length;
    }

    public Tensor copy() {
        return new Tensor(shape, data.clone(), axes);
    }

    public int axisIndex(String id) {
        if (axes == null) return -1;
        return axes.indexOf(id);
    }

    public String shapeString() {
        StringBuilder sb = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            if (i > 0) sb.append(", ");
            if (axes != null && i < axes.size()) sb.append(axes.get(i)).append('=');
            sb.append(shape[i]);
        }
        return sb.append(')').toString();
    }

    /** Row-major strides in elements. */
    public static long[] strides(long[] shape) {
        long[] st = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            st[i] = s;
            s *= shape[i];
        }
        return st;
    }

    /**
     * For every element, the index of its group when the axes in {@code reduce} are reduced over
     * (the kept axes form a mixed-radix number, in axis order). Returns the number of groups in
     * {@code count[0]}.
     */
    public int[] groupIndex(boolean[] reduce, int[] count) {
        long[] st = strides(shape);
        int groups = 1;
        long[] keptMul = new long[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            if (!reduce[i]) {
                keptMul[i] = groups;
                groups *= (int) shape[i];
            }
        }
        int[] idx = new int[data.length];
        if (groups == 1) {
            count[0] = 1;
            return idx;
        }
        for (int flat = 0; flat < data.length; flat++) {
            long rem = flat;
            long g = 0;
            for (int i = 0; i < shape.length; i++) {
                long coord = rem / st[i];
                rem -= coord * st[i];
                if (!reduce[i]) g += coord * keptMul[i];
            }
            idx[flat] = (int) g;
        }
        count[0] = groups;
        return idx;
    }
}
