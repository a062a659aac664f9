// CloudHSMClient is what a Java application that uses the JDK's own
// SunPKCS11 provider (not AWS's CloudHSM JCE provider) does with a CloudHSM
// token: log in with "user:password", then AES/GCM/NoPadding and RSA-OAEP.
//
// Usage: java CloudHSMClient CONFIG PIN AES_ALIAS PROFILE
//
// PROFILE (cloudhsm or standard) says which answers to expect. It prints
// one "PASS name" or "FAIL name: why" line per check and exits 1 when any
// check failed (tests/clients/cloudhsm_test.go runs it).
//
// What SunPKCS11 (JDK 17) does with AES-GCM, and so what a CloudHSM user
// of it sees:
//   - the IV of a GCMParameterSpec is copied into a native CK_GCM_PARAMS
//     that the JNI code frees after C_EncryptInit, and nothing is copied
//     back: an IV the HSM writes into pIV never reaches Java. Cipher.getIV()
//     returns what the caller gave.
//   - without a GCMParameterSpec it draws a random 16-byte IV itself;
//     CloudHSM refuses any non-zero IV.
// So through SunPKCS11 a CloudHSM user can encrypt with a zero IV but never
// decrypt what was encrypted (the tag does not verify under the zero IV).
// RSA-OAEP: SunPKCS11 offers no OAEP cipher at all (RSA/ECB/PKCS1Padding and
// NoPadding only), in either profile.
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.ProviderException;
import java.security.NoSuchAlgorithmException;
import java.security.Provider;
import java.security.SecureRandom;
import java.security.Security;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.NoSuchPaddingException;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

public class CloudHSMClient {
    private static int failures = 0;

    interface Check {
        void run() throws Exception;
    }

    private static void check(String name, Check c) {
        try {
            c.run();
            System.out.println("PASS " + name);
        } catch (Throwable e) {
            failures++;
            System.out.println("FAIL " + name + ": " + e);
            e.printStackTrace(System.out);
        }
    }

    private static void require(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException(what);
        }
    }

    /** The message of t and of its causes, for checks on the CKR_ name. */
    private static String causes(Throwable t) {
        StringBuilder b = new StringBuilder();
        for (; t != null; t = t.getCause()) {
            b.append(t).append(" <- ");
        }
        return b.toString();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: CloudHSMClient CONFIG PIN AES_ALIAS PROFILE");
            System.exit(2);
        }
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        Security.addProvider(p);
        char[] pin = args[1].toCharArray();
        String aesAlias = args[2];
        boolean cloud = args[3].equals("cloudhsm");

        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        final SecretKey[] key = new SecretKey[1];
        check("java/login-name-password", () -> {
            ks.load(null, pin);
            key[0] = (SecretKey) ks.getKey(aesAlias, null);
            require(key[0] != null, "no secret key " + aesAlias);
        });
        if (key[0] == null) {
            System.exit(1);
        }
        byte[] msg = "the same plaintext twice".getBytes(StandardCharsets.UTF_8);

        // A zero IV, as CloudHSM asks: two encryptions, then a decryption
        // with the IV Java knows (still zero).
        check("java/gcm-zero-iv", () -> {
            byte[][] ct = new byte[2][];
            for (int i = 0; i < 2; i++) {
                Cipher c = Cipher.getInstance("AES/GCM/NoPadding", p);
                c.init(Cipher.ENCRYPT_MODE, key[0], new GCMParameterSpec(128, new byte[12]));
                ct[i] = c.doFinal(msg);
                require(ct[i].length == msg.length + 16, "ciphertext||tag is " + ct[i].length + " bytes");
                require(Arrays.equals(c.getIV(), new byte[12]), "getIV() is not the zero IV given");
            }
            Cipher d = Cipher.getInstance("AES/GCM/NoPadding", p);
            d.init(Cipher.DECRYPT_MODE, key[0], new GCMParameterSpec(128, new byte[12]));
            if (cloud) {
                require(!Arrays.equals(ct[0], ct[1]), "the HSM used the same IV twice");
                try {
                    d.doFinal(ct[0]);
                    throw new IllegalStateException("decrypted with the zero IV although the HSM chose the IV");
                } catch (AEADBadTagException expected) {
                    System.out.println("java/gcm-zero-iv: decrypt with the zero IV: " + expected);
                }
            } else {
                // Standard: the zero IV is used as given, twice.
                require(Arrays.equals(ct[0], ct[1]), "standard: the caller's IV was not used");
                require(Arrays.equals(d.doFinal(ct[0]), msg), "round trip");
            }
        });

        // The SunPKCS11 default (it draws the IV itself) and an explicit
        // random IV: refused by CloudHSM, used by the standard profile.
        check("java/gcm-random-iv", () -> {
            byte[] iv = new byte[12];
            new SecureRandom().nextBytes(iv);
            gcmRefusedOrRoundTrip(p, key[0], new GCMParameterSpec(128, iv), msg, cloud);
        });
        check("java/gcm-provider-iv", () -> {
            gcmRefusedOrRoundTrip(p, key[0], null, msg, cloud);
        });

        check("java/oaep-not-in-sunpkcs11", () -> {
            for (String t : new String[] {"RSA/ECB/OAEPWithSHA-256AndMGF1Padding", "RSA/ECB/OAEPPadding"}) {
                try {
                    Cipher.getInstance(t, p);
                    throw new IllegalStateException("SunPKCS11 offers " + t);
                } catch (NoSuchAlgorithmException | NoSuchPaddingException expected) {
                    // SunPKCS11 maps only CKM_RSA_PKCS and CKM_RSA_X_509.
                }
            }
        });

        System.out.println(failures == 0 ? "java: all checks passed" : "java: " + failures + " check(s) failed");
        System.exit(failures == 0 ? 0 : 1);
    }

    /**
     * Encrypts msg with spec (null: SunPKCS11 draws the IV) and decrypts it
     * with the IV the Cipher reports. cloudhsm: the encryption must be
     * refused with CKR_MECHANISM_PARAM_INVALID (a non-zero IV); standard: the
     * round trip must work.
     */
    private static void gcmRefusedOrRoundTrip(Provider p, SecretKey key, GCMParameterSpec spec, byte[] msg,
            boolean cloud) throws Exception {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding", p);
        byte[] ct = null;
        Exception refused = null;
        try {
            if (spec == null) {
                c.init(Cipher.ENCRYPT_MODE, key);
            } else {
                c.init(Cipher.ENCRYPT_MODE, key, spec);
            }
            ct = c.doFinal(msg);
        } catch (GeneralSecurityException | ProviderException e) {
            refused = e;
        }
        if (cloud) {
            require(refused != null, "a non-zero caller IV was accepted");
            System.out.println("refused: " + causes(refused));
            require(causes(refused).contains("CKR_MECHANISM_PARAM_INVALID"),
                    "refused, but not with CKR_MECHANISM_PARAM_INVALID: " + causes(refused));
            return;
        }
        if (refused != null) {
            throw refused;
        }
        Cipher d = Cipher.getInstance("AES/GCM/NoPadding", p);
        d.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, c.getIV()));
        require(Arrays.equals(d.doFinal(ct), msg), "round trip");
    }
}
