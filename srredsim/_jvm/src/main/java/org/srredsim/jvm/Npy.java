package org.srredsim.jvm;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reader and writer for NumPy {@code .npy} files (format versions 1.0, 2.0 and 3.0), the format of
 * bioimage.io test tensors. Reads bool, (u)int8/16/32/64, float16/32/64 in either byte order, C
 * order; values become float32 as the engines are fed float32. Writes little-endian float32.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {}

    public static Tensor read(Path path) throws IOException {
        try (InputStream in = Files.newInputStream(path)) {
            return read(in, path.toString());
        }
    }

    public static Tensor read(InputStream raw, String name) throws IOException {
        DataInputStream in = new DataInputStream(raw);
        byte[] magic = new byte[6];
        in.readFully(magic);
        for (int i = 0; i < 6; i++) {
            if (magic[i] != MAGIC[i]) throw new IOException(name + ": not a .npy file (bad magic)");
        }
        int major = in.readUnsignedByte();
        in.readUnsignedByte(); // minor
        long headerLen;
        byte[] lenBytes;
        if (major == 1) {
            lenBytes = new byte[2];
            in.readFully(lenBytes);
            headerLen = ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getShort() & 0xffff;
        } else if (major == 2 || major == 3) {
            lenBytes = new byte[4];
            in.readFully(lenBytes);
            headerLen = ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xffffffffL;
        } else {
            throw new IOException(name + ": unsupported .npy format version " + major);
        }
        byte[] hb = new byte[(int) headerLen];
        in.readFully(hb);
        String header = new String(hb, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        Matcher m = DESCR.matcher(header);
        if (!m.find()) throw new IOException(name + ": .npy header has no descr: " + header.trim());
        String descr = m.group(1);
        Matcher f = FORTRAN.matcher(header);
        if (f.find() && f.group(1).equals("True")) {
            throw new IOException(name + ": Fortran-ordered .npy arrays are not supported");
        }
        Matcher s = SHAPE.matcher(header);
        if (!s.find()) throw new IOException(name + ": .npy header has no shape: " + header.trim());
        List<Long> dims = new ArrayList<>();
        for (String part : s.group(1).split(",")) {
            String t = part.trim();
            if (!t.isEmpty()) dims.add(Long.parseLong(t.replace("L", "")));
        }
        long[] shape = new long[dims.size()];
        for (int i = 0; i < shape.length; i++) shape[i] = dims.get(i);
        int n = (int) Tensor.size(shape);

        char order = descr.charAt(0);
        String kind = descr.substring(1);
        ByteOrder bo = order == '>' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        int itemSize = Integer.parseInt(kind.substring(1));
        char type = kind.charAt(0);
        byte[] bytes = new byte[n * itemSize];
        in.readFully(bytes);
        ByteBuffer bb = ByteBuffer.wrap(bytes).order(bo);
        float[] out = new float[n];
        switch (type) {
            case 'f':
                if (itemSize == 4) bb.asFloatBuffer().get(out);
                else if (itemSize == 8) for (int i = 0; i < n; i++) out[i] = (float) bb.getDouble();
                else if (itemSize == 2) for (int i = 0; i < n; i++) out[i] = halfToFloat(bb.getShort());
                else throw new IOException(name + ": unsupported float size " + itemSize);
                break;
            case 'i':
                for (int i = 0; i < n; i++) {
                    switch (itemSize) {
                        case 1: out[i] = bb.get(); break;
                        case 2: out[i] = bb.getShort(); break;
                        case 4: out[i] = bb.getInt(); break;
                        case 8: out[i] = bb.getLong(); break;
                        default: throw new IOException(name + ": unsupported int size " + itemSize);
                    }
                }
                break;
            case 'u':
            case 'b':
                for (int i = 0; i < n; i++) {
                    switch (itemSize) {
                        case 1: out[i] = bb.get() & 0xff; break;
                        case 2: out[i] = bb.getShort() & 0xffff; break;
                        case 4: out[i] = bb.getInt() & 0xffffffffL; break;
                        case 8: {
                            long v = bb.getLong();
                            out[i] = v >= 0 ? v : (float) (v & Long.MAX_VALUE) + 9.223372036854775807E18f;
                            break;
                        }
                        default: throw new IOException(name + ": unsupported uint size " + itemSize);
                    }
                }
                break;
            default:
                throw new IOException(name + ": unsupported .npy dtype " + descr);
        }
        return new Tensor(shape, out, null);
    }

    /** IEEE 754 half precision to float (Float.float16ToFloat needs Java 20). */
    static float halfToFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits >>> 15) << 31;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        if (exp == 0x1f) return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        if (exp == 0) {
            float v = mant * 5.9604644775390625E-8f; // 2^-24
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    public static void write(Path path, Tensor t) throws IOException {
        StringBuilder shape = new StringBuilder("(");
        for (int i = 0; i < t.shape.length; i++) {
            shape.append(t.shape[i]);
            if (t.shape.length == 1 || i < t.shape.length - 1) shape.append(", ");
        }
        shape.append(')');
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
        int total = 10 + dict.length() + 1;
        int pad = (64 - total % 64) % 64;
        StringBuilder header = new StringBuilder(dict);
        for (int i = 0; i < pad; i++) header.append(' ');
        header.append('\n');
        byte[] hb = header.toString().getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer buf = ByteBuffer.allocate(10 + hb.length + 4 * t.data.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) hb.length).put(hb);
        buf.asFloatBuffer().put(t.data);
        Files.createDirectories(path.toAbsolutePath().getParent());
        try (OutputStream out = Files.newOutputStream(path)) {
            out.write(buf.array());
        }
    }
}
