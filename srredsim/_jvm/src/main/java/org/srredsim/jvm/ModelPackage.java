package org.srredsim.jvm;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Enumeration;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * A bioimage.io package opened as DeepImageJ opens one: a zip is unpacked into a folder (as
 * DeepImageJ's installer unpacks it into Fiji's models/ folder), the RDF is parsed, and the weights
 * of one format are made ready for their engine.
 */
public final class ModelPackage implements AutoCloseable {
    /** Weight formats DeepImageJ 3 runs and this harness reproduces. */
    public static final String TF = "tensorflow_saved_model_bundle";
    public static final String ONNX = "onnx";

    public final Path source;
    public final Path root;
    public final Rdf rdf;
    private final Path temp;

    public ModelPackage(Path source) throws IOException {
        this.source = source;
        if (!Files.exists(source)) throw new IOException(source + ": no such package");
        this.temp = Files.createTempDirectory("srredsim-jvm-");
        try {
            if (Files.isDirectory(source)) {
                root = source;
            } else {
                root = temp.resolve("package");
                unzip(source, root);
            }
            rdf = Rdf.load(root);
        } catch (IOException | RuntimeException e) {
            deleteTree(temp);
            throw e;
        }
    }

    public static String engineOf(String weightsFormat) {
        switch (weightsFormat) {
            case TF: return "tensorflow";
            case ONNX: return "onnx";
            default: return null;
        }
    }

    /** Load the weights of {@code format} on the engine DeepImageJ would use. */
    public Engine load(String format) throws Exception {
        Map<String, Object> entry = rdf.weights.get(format);
        if (entry == null) throw new IllegalArgumentException("the package has no " + format + " weights");
        Path src = rdf.resolve(String.valueOf(entry.get("source")));
        switch (format) {
            case TF: {
                Path dir;
                if (Files.isDirectory(src)) {
                    dir = src;
                } else {
                    dir = temp.resolve("tensorflow_saved_model_bundle");
                    if (!Files.exists(dir)) unzip(src, dir);
                }
                return new TensorFlowEngine(dir);
            }
            case ONNX:
                return new OnnxEngine(src);
            default:
                throw new IllegalArgumentException("weights format " + format + " is not run by this harness");
        }
    }

    static void unzip(Path zip, Path dest) throws IOException {
        Files.createDirectories(dest);
        Path norm = dest.toAbsolutePath().normalize();
        try (ZipFile zf = new ZipFile(zip.toFile())) {
            Enumeration<? extends ZipEntry> entries = zf.entries();
            while (entries.hasMoreElements()) {
                ZipEntry e = entries.nextElement();
                Path out = norm.resolve(e.getName()).normalize();
                if (!out.startsWith(norm)) throw new IOException(zip + ": entry " + e.getName() + " escapes the archive");
                if (e.isDirectory()) {
                    Files.createDirectories(out);
                } else {
                    Files.createDirectories(out.getParent());
                    try (InputStream in = zf.getInputStream(e)) {
                        Files.copy(in, out, StandardCopyOption.REPLACE_EXISTING);
                    }
                }
            }
        } catch (java.util.zip.ZipException e) {
            throw new IOException(zip + ": not a readable zip file (" + e.getMessage() + ")");
        }
    }

    static void deleteTree(Path p) {
        if (p == null || !Files.exists(p)) return;
        try {
            Files.walkFileTree(p, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    Files.deleteIfExists(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
                    Files.deleteIfExists(dir);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            // best effort
        }
    }

    @Override
    public void close() {
        deleteTree(temp);
    }
}
