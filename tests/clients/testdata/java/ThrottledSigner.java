// ThrottledSigner signs with ECDSA P-256 through Java 17's SunPKCS11 from
// several threads for a while, against a slot whose emulated HSMs have an
// ec-sign budget, and reports what came back: the signatures made and, for
// each failure, the PKCS11Exception found in the exception's cause chain
// (its getErrorCode() and message). The key pair is generated on the token
// by SunPKCS11's KeyPairGenerator (session keys: CKA_TOKEN false), so no
// certificate has to be stored for the KeyStore to show a private key.
//
// Usage: java ThrottledSigner CONFIG PIN THREADS MILLISECONDS
//
// Output, one fact a line (tests/clients/cluster_java_test.go reads it):
//   SIGNED n                  signatures made in the window
//   ELAPSED_MS n              the window, from the first call to the last answer
//   FAILED n                  signatures that failed
//   ERROR 0x<code> <message> n    failures by PKCS11Exception code (hex) and message
//   OTHER <exception> n       failures without a PKCS11Exception in the chain
//   FIRST_FAILURE <chain>     the first failure's cause chain, for the log
//   VERIFIED                  the first signature verified with SunEC
// It exits 0 when it ran (failures are the caller's to judge), 1 when it
// could not start (login, key generation).
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import sun.security.pkcs11.wrapper.PKCS11Exception;

public class ThrottledSigner {
    /** The message of t and of its causes. */
    private static String causes(Throwable t) {
        StringBuilder b = new StringBuilder();
        for (; t != null; t = t.getCause()) {
            if (b.length() > 0) {
                b.append(" <- ");
            }
            b.append(t);
        }
        return b.toString();
    }

    /** The PKCS11Exception in t's cause chain, or null. */
    private static PKCS11Exception pkcs11Cause(Throwable t) {
        for (; t != null; t = t.getCause()) {
            if (t instanceof PKCS11Exception) {
                return (PKCS11Exception) t;
            }
        }
        return null;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: ThrottledSigner CONFIG PIN THREADS MILLISECONDS");
            System.exit(2);
        }
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        Security.addProvider(p);
        int threads = Integer.parseInt(args[2]);
        long millis = Long.parseLong(args[3]);

        KeyPair kp;
        try {
            KeyStore ks = KeyStore.getInstance("PKCS11", p);
            ks.load(null, args[1].toCharArray());
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC", p);
            g.initialize(new ECGenParameterSpec("secp256r1"));
            kp = g.generateKeyPair();
        } catch (Exception e) {
            System.out.println("SETUP_FAILED " + causes(e));
            e.printStackTrace(System.out);
            System.exit(1);
            return;
        }

        byte[] msg = "throttled signer".getBytes(StandardCharsets.UTF_8);
        AtomicLong signed = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        Map<String, AtomicLong> byError = new ConcurrentHashMap<>();
        AtomicReference<String> firstFailure = new AtomicReference<>();
        AtomicReference<byte[]> firstSignature = new AtomicReference<>();

        long start = System.nanoTime();
        long deadline = start + millis * 1_000_000L;
        Thread[] ts = new Thread[threads];
        for (int i = 0; i < threads; i++) {
            ts[i] = new Thread(() -> {
                while (System.nanoTime() < deadline) {
                    try {
                        Signature s = Signature.getInstance("SHA256withECDSA", p);
                        s.initSign(kp.getPrivate());
                        s.update(msg);
                        byte[] sig = s.sign();
                        firstSignature.compareAndSet(null, sig);
                        signed.incrementAndGet();
                    } catch (Exception e) {
                        failed.incrementAndGet();
                        firstFailure.compareAndSet(null, causes(e));
                        PKCS11Exception pe = pkcs11Cause(e);
                        String k = pe == null ? "OTHER " + e.getClass().getName()
                                : String.format("ERROR 0x%x %s", pe.getErrorCode(), pe.getMessage());
                        byError.computeIfAbsent(k, x -> new AtomicLong()).incrementAndGet();
                        // A millisecond's pause, as an application would
                        // take: without it 4 threads make ~40,000 refused
                        // calls a second (each a line of the module's log).
                        try {
                            Thread.sleep(1);
                        } catch (InterruptedException ie) {
                            return;
                        }
                    }
                }
            });
            ts[i].start();
        }
        for (Thread t : ts) {
            t.join();
        }
        long elapsed = (System.nanoTime() - start) / 1_000_000L;

        System.out.println("SIGNED " + signed.get());
        System.out.println("ELAPSED_MS " + elapsed);
        System.out.println("FAILED " + failed.get());
        for (Map.Entry<String, AtomicLong> e : new TreeMap<>(byError).entrySet()) {
            System.out.println(e.getKey() + " " + e.getValue().get());
        }
        if (firstFailure.get() != null) {
            System.out.println("FIRST_FAILURE " + firstFailure.get());
        }
        byte[] sig = firstSignature.get();
        if (sig != null) {
            Signature v = Signature.getInstance("SHA256withECDSA", "SunEC");
            v.initVerify(kp.getPublic());
            v.update(msg);
            if (v.verify(sig)) {
                System.out.println("VERIFIED");
            }
        }
    }
}
