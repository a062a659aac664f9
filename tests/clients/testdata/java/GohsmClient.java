// GohsmClient drives libgohsm.so through Java 17's SunPKCS11 provider, the
// way a Java application would: the provider configured from a file, the
// token opened as a PKCS11 KeyStore with the user PIN, then signatures and
// AES-GCM from several threads at once with the token's keys. Every
// signature is verified with the JDK's own providers (SunEC, SunRsaSign)
// and the certificate's public key, never with the token.
//
// Usage: java GohsmClient CONFIG PIN EC_ALIAS RSA_ALIAS AES_ALIAS THREADS ITERATIONS [AES_KAT_ALIAS:HEX]
//
// AES_KAT_ALIAS names a token AES key imported with the known value HEX: its
// GCM output is cross-checked with the JDK's SunJCE both ways.
//
// It prints one "PASS name" or "FAIL name: why" line per check and exits 1
// when any check failed (tests/clients/java_test.go runs it).
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.spec.AlgorithmParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

public class GohsmClient {
    private static int failures = 0;

    private static void pass(String name) {
        System.out.println("PASS " + name);
    }

    private static void fail(String name, Throwable why) {
        failures++;
        System.out.println("FAIL " + name + ": " + why);
        why.printStackTrace(System.out);
    }

    /** A check that throws on failure. */
    interface Check {
        void run() throws Exception;
    }

    private static boolean check(String name, Check c) {
        try {
            c.run();
            pass(name);
            return true;
        } catch (Throwable e) {
            fail(name, e);
            return false;
        }
    }

    private static void require(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException(what);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 7 && args.length != 8) {
            System.err.println("usage: GohsmClient CONFIG PIN EC_ALIAS RSA_ALIAS AES_ALIAS THREADS ITERATIONS [AES_KAT_ALIAS:HEX]");
            System.exit(2);
        }
        String config = args[0];
        char[] pin = args[1].toCharArray();
        String ecAlias = args[2], rsaAlias = args[3], aesAlias = args[4];
        int threads = Integer.parseInt(args[5]);
        int iterations = Integer.parseInt(args[6]);

        Provider p = Security.getProvider("SunPKCS11").configure(config);
        Security.addProvider(p);
        System.out.println("provider " + p.getName());

        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        if (!check("java/keystore-login", () -> ks.load(null, pin))) {
            System.exit(1);
        }

        final PrivateKey[] ec = new PrivateKey[1], rsa = new PrivateKey[1];
        final PublicKey[] ecPub = new PublicKey[1], rsaPub = new PublicKey[1];
        final SecretKey[] aes = new SecretKey[1];
        boolean keysOK = check("java/keystore-entries", () -> {
            List<String> aliases = Collections.list(ks.aliases());
            System.out.println("aliases " + aliases);
            for (String a : new String[] {ecAlias, rsaAlias}) {
                require(ks.isKeyEntry(a), a + " is not a key entry");
                require(ks.entryInstanceOf(a, KeyStore.PrivateKeyEntry.class),
                        a + " is not a PrivateKeyEntry");
            }
            require(ks.entryInstanceOf(aesAlias, KeyStore.SecretKeyEntry.class),
                    aesAlias + " is not a SecretKeyEntry");
            ec[0] = (PrivateKey) ks.getKey(ecAlias, null);
            rsa[0] = (PrivateKey) ks.getKey(rsaAlias, null);
            aes[0] = (SecretKey) ks.getKey(aesAlias, null);
            require(ec[0].getAlgorithm().equals("EC"), "EC key algorithm " + ec[0].getAlgorithm());
            require(rsa[0].getAlgorithm().equals("RSA"), "RSA key algorithm " + rsa[0].getAlgorithm());
            require(aes[0].getAlgorithm().equals("AES"), "AES key algorithm " + aes[0].getAlgorithm());
            Certificate ecCert = ks.getCertificate(ecAlias), rsaCert = ks.getCertificate(rsaAlias);
            require(ecCert != null && rsaCert != null, "missing certificate");
            ecPub[0] = ecCert.getPublicKey();
            rsaPub[0] = rsaCert.getPublicKey();
        });
        if (!keysOK) {
            System.exit(1);
        }

        PSSParameterSpec pss = new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1);
        signCheck("java/sign-SHA256withECDSA", "SHA256withECDSA", null, ec[0], ecPub[0], "SunEC", threads, iterations);
        signCheck("java/sign-SHA256withRSA", "SHA256withRSA", null, rsa[0], rsaPub[0], "SunRsaSign", threads, iterations);
        signCheck("java/sign-RSASSA-PSS", "RSASSA-PSS", pss, rsa[0], rsaPub[0], "SunRsaSign", threads, iterations);
        signCheck("java/sign-SHA256withRSASSA-PSS", "SHA256withRSASSA-PSS", pss, rsa[0], rsaPub[0], "SunRsaSign/RSASSA-PSS", threads, iterations);
        gcmCheck("java/aes-gcm", aes[0], p, threads, iterations);
        if (args.length == 8) {
            String[] kat = args[7].split(":", 2);
            gcmSunJCECheck("java/aes-gcm-sunjce", ks, kat[0], HexFormat.of().parseHex(kat[1]), p);
        }

        System.out.println(failures == 0 ? "java: all checks passed" : "java: " + failures + " check(s) failed");
        System.exit(failures == 0 ? 0 : 1);
    }

    /** Runs body from threads threads at once and rethrows the first failure. */
    private static void parallel(int threads, Callable<Void> body) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Void>> fs = new ArrayList<>();
            for (int i = 0; i < threads; i++) {
                fs.add(pool.submit(body));
            }
            for (Future<Void> f : fs) {
                f.get(120, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * Signs with the token key (the SunPKCS11 provider) from threads threads,
     * verifies every signature with the JDK provider verifier and the
     * certificate's public key, and checks a tampered message is rejected.
     */
    private static void signCheck(String name, String alg, AlgorithmParameterSpec params, PrivateKey priv,
            PublicKey pub, String verifier, int threads, int iterations) {
        check(name + " (" + threads + " threads x " + iterations + ")", () -> {
            Provider tokenProvider = Security.getProvider("SunPKCS11-gohsm");
            parallel(threads, () -> {
                SecureRandom rnd = new SecureRandom();
                Signature s = Signature.getInstance(alg, tokenProvider);
                // verifier is "Provider" or "Provider/Algorithm" when the
                // JDK names the algorithm differently.
                String[] pv = (verifier + "/" + alg).split("/");
                Signature v = Signature.getInstance(pv[1], pv[0]);
                if (params != null) {
                    s.setParameter(params);
                    v.setParameter(params);
                }
                for (int i = 0; i < iterations; i++) {
                    byte[] msg = new byte[1 + rnd.nextInt(300)];
                    rnd.nextBytes(msg);
                    s.initSign(priv);
                    s.update(msg);
                    byte[] sig = s.sign();
                    require(s.getProvider() == tokenProvider, "signed by " + s.getProvider().getName());
                    v.initVerify(pub);
                    v.update(msg);
                    require(v.verify(sig), alg + ": " + verifier + " rejects the token's signature");
                    msg[0] ^= 1;
                    v.initVerify(pub);
                    v.update(msg);
                    require(!v.verify(sig), alg + ": " + verifier + " accepts a tampered message");
                }
                return null;
            });
        });
    }

    /**
     * AES/GCM/NoPadding with the token key from threads threads: every
     * encryption (random 12-byte IV, AAD) decrypts to the plaintext, a
     * tampered ciphertext or AAD fails with AEADBadTagException.
     */
    private static void gcmCheck(String name, SecretKey key, Provider tokenProvider, int threads, int iterations) {
        check(name + " (" + threads + " threads x " + iterations + ")", () -> {
            parallel(threads, () -> {
                SecureRandom rnd = new SecureRandom();
                Cipher c = Cipher.getInstance("AES/GCM/NoPadding", tokenProvider);
                require(c.getProvider() == tokenProvider, "cipher from " + c.getProvider().getName());
                for (int i = 0; i < iterations; i++) {
                    byte[] iv = new byte[12];
                    rnd.nextBytes(iv);
                    byte[] aad = ("aad " + i).getBytes(StandardCharsets.UTF_8);
                    byte[] msg = new byte[rnd.nextInt(1000)];
                    rnd.nextBytes(msg);
                    c.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, iv));
                    c.updateAAD(aad);
                    byte[] ct = c.doFinal(msg);
                    require(ct.length == msg.length + 16, "ciphertext length " + ct.length + " for " + msg.length);

                    c.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, iv));
                    c.updateAAD(aad);
                    byte[] pt = c.doFinal(ct);
                    require(Arrays.equals(pt, msg), "decryption differs from the plaintext");

                    byte[] bad = ct.clone();
                    bad[rnd.nextInt(bad.length)] ^= 0x40;
                    expectBadTag(c, key, iv, aad, bad, "tampered ciphertext");
                    expectBadTag(c, key, iv, "other aad".getBytes(StandardCharsets.UTF_8), ct, "other AAD");
                }
                return null;
            });
        });
    }

    /**
     * The token key aliased alias holds value: what the token encrypts, the
     * JDK's SunJCE decrypts with the same key bytes, and the other way round.
     */
    private static void gcmSunJCECheck(String name, KeyStore ks, String alias, byte[] value, Provider tokenProvider) {
        check(name, () -> {
            SecretKey tokenKey = (SecretKey) ks.getKey(alias, null);
            require(tokenKey != null, "no key " + alias);
            SecretKey softKey = new SecretKeySpec(value, "AES");
            Cipher tok = Cipher.getInstance("AES/GCM/NoPadding", tokenProvider);
            Cipher jce = Cipher.getInstance("AES/GCM/NoPadding", "SunJCE");
            SecureRandom rnd = new SecureRandom();
            for (int i = 0; i < 20; i++) {
                byte[] iv = new byte[12];
                rnd.nextBytes(iv);
                byte[] aad = ("aad " + i).getBytes(StandardCharsets.UTF_8);
                byte[] msg = new byte[rnd.nextInt(1000)];
                rnd.nextBytes(msg);
                Cipher[][] pairs = {{tok, jce}, {jce, tok}};
                for (Cipher[] pair : pairs) {
                    Key encKey = pair[0] == tok ? tokenKey : softKey;
                    Key decKey = pair[1] == tok ? tokenKey : softKey;
                    pair[0].init(Cipher.ENCRYPT_MODE, encKey, new GCMParameterSpec(128, iv));
                    pair[0].updateAAD(aad);
                    byte[] ct = pair[0].doFinal(msg);
                    pair[1].init(Cipher.DECRYPT_MODE, decKey, new GCMParameterSpec(128, iv));
                    pair[1].updateAAD(aad);
                    require(Arrays.equals(pair[1].doFinal(ct), msg),
                            pair[0].getProvider().getName() + " -> " + pair[1].getProvider().getName() + ": plaintext differs");
                    // A fresh IV for the second direction: Java refuses to
                    // encrypt twice with one key and IV.
                    iv[0] ^= 1;
                }
            }
        });
    }

    private static void expectBadTag(Cipher c, Key key, byte[] iv, byte[] aad, byte[] ct, String what)
            throws GeneralSecurityException {
        c.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, iv));
        c.updateAAD(aad);
        try {
            c.doFinal(ct);
        } catch (AEADBadTagException expected) {
            return;
        }
        throw new IllegalStateException("AES-GCM decrypts a " + what);
    }
}
