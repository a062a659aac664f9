package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/attrs"
)

// TestHelperProcess is not a test: it is the entry point of the helper
// processes the multi-process tests start (os.Args[0] with
// -test.run=^TestHelperProcess$ and $GOHSM_E2E_ROLE). Each loads the library
// itself, reads $GOHSM_CONF in C_Initialize, prints its results on stdout
// and exits 0, or prints the failure on stderr and exits 1.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(roleEnv)
	if role == "" {
		t.Skip("helper process entry point; runs only when started by another test")
	}
	var args []string
	for i, a := range os.Args {
		if a == "--" {
			args = os.Args[i+1:]
			break
		}
	}
	fn, ok := roles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "helper: unknown role %q\n", role)
		os.Exit(2)
	}
	if err := fn(args); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

var roles = map[string]func(args []string) error{
	"sign":    helperSign,
	"destroy": helperDestroy,
	"create":  helperCreate,
	"list":    helperList,
	"writer":  helperWriter,
	"share":   helperShare,
	"values":  helperValues,
	"init":    helperInit,
}

// helperSession loads the library, initialises it from $GOHSM_CONF (NULL
// pReserved) and logs in as $GOHSM_E2E_PIN's crypto user.
func helperSession() (*pkcs11.Ctx, pkcs11.SessionHandle, error) {
	lib := os.Getenv("GOHSM_LIB")
	p := pkcs11.New(lib)
	if p == nil {
		return nil, 0, fmt.Errorf("dlopen %s failed", lib)
	}
	if err := p.Initialize(); err != nil {
		return nil, 0, fmt.Errorf("C_Initialize: %w", err)
	}
	s, err := p.OpenSession(0, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, 0, fmt.Errorf("C_OpenSession: %w", err)
	}
	if err := p.Login(s, pkcs11.CKU_USER, os.Getenv(pinEnv)); err != nil {
		return nil, 0, fmt.Errorf("C_Login: %w", err)
	}
	return p, s, nil
}

func findOne(p *pkcs11.Ctx, s pkcs11.SessionHandle, tmpl ...*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	hs, err := findAll(p, s, tmpl)
	if err != nil {
		return 0, err
	}
	if len(hs) != 1 {
		return 0, fmt.Errorf("found %d objects, want 1", len(hs))
	}
	return hs[0], nil
}

// helperSign: sign LABEL MSG-HEX finds the private key labelled LABEL and
// prints its CKM_ECDSA_SHA256 signature of MSG in hex.
func helperSign(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: sign LABEL MSG-HEX")
	}
	msg, err := hex.DecodeString(args[1])
	if err != nil {
		return err
	}
	p, s, err := helperSession()
	if err != nil {
		return err
	}
	k, err := findOne(p, s, pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_LABEL, args[0]))
	if err != nil {
		return err
	}
	if err := p.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA_SHA256, nil)}, k); err != nil {
		return fmt.Errorf("C_SignInit: %w", err)
	}
	sig, err := p.Sign(s, msg)
	if err != nil {
		return fmt.Errorf("C_Sign: %w", err)
	}
	fmt.Printf("%d %x\n", k, sig)
	return p.Finalize()
}

// helperDestroy: destroy LABEL destroys every object labelled LABEL and
// prints how many there were.
func helperDestroy(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: destroy LABEL")
	}
	p, s, err := helperSession()
	if err != nil {
		return err
	}
	hs, err := findAll(p, s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, args[0])})
	if err != nil {
		return err
	}
	for _, h := range hs {
		if err := p.DestroyObject(s, h); err != nil {
			return fmt.Errorf("C_DestroyObject %d: %w", h, err)
		}
	}
	fmt.Println(len(hs))
	return p.Finalize()
}

func dataObject(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, "gohsm-e2e"),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("value of "+label)),
	}
}

// helperCreate: create PREFIX N logs in, prints READY, waits for a line on
// stdin, creates N token data objects labelled PREFIX-0..PREFIX-N-1 and
// prints DONE.
func helperCreate(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: create PREFIX N")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	p, s, err := helperSession()
	if err != nil {
		return err
	}
	fmt.Println("READY")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for go: %w", err)
	}
	for i := range n {
		if _, err := p.CreateObject(s, dataObject(fmt.Sprintf("%s-%d", args[0], i))); err != nil {
			return fmt.Errorf("C_CreateObject %d: %w", i, err)
		}
	}
	fmt.Println("DONE")
	return p.Finalize()
}

// helperList prints "HANDLE LABEL" for every data object it can see (it
// makes no session objects of its own).
func helperList(args []string) error {
	p, s, err := helperSession()
	if err != nil {
		return err
	}
	hs, err := findAll(p, s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA)})
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	for _, h := range hs {
		a, err := p.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
		if err != nil {
			return fmt.Errorf("C_GetAttributeValue %d: %w", h, err)
		}
		fmt.Fprintf(w, "%d %s\n", h, a[0].Value)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return p.Finalize()
}

// writerObject is the writer's object number i labelled label: a token
// data object for even i, a private AES token key (its value sealed at
// rest, made readable) for odd i, each with writerValue(label) as value.
func writerObject(label string, i int) []*pkcs11.Attribute {
	if i%2 == 0 {
		return dataObject(label)
	}
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, writerValue(label)),
	}
}

// writerValue is the CKA_VALUE of the writer's object labelled
// PREFIX-i: dataObject's for even i, SHA-256 of the label for odd i.
func writerValue(label string) []byte {
	n := label[strings.LastIndexByte(label, '-')+1:]
	if i, err := strconv.Atoi(n); err == nil && i%2 == 1 {
		v := sha256.Sum256([]byte(label))
		return v[:]
	}
	return []byte("value of " + label)
}

// helperInit loads the library, calls C_Initialize ($GOHSM_CONF, NULL
// pReserved) and prints its result: OK, or the CKR_ name.
func helperInit(args []string) error {
	lib := os.Getenv("GOHSM_LIB")
	p := pkcs11.New(lib)
	if p == nil {
		return fmt.Errorf("dlopen %s failed", lib)
	}
	if err := p.Initialize(); err != nil {
		fmt.Println(err)
		return nil
	}
	fmt.Println("OK")
	return p.Finalize()
}

// helperValues prints "HANDLE LABEL VALUE-HEX" for every token data object
// and secret key it can see.
func helperValues(args []string) error {
	p, s, err := helperSession()
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	for _, class := range []uint{pkcs11.CKO_DATA, pkcs11.CKO_SECRET_KEY} {
		hs, err := findAll(p, s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true)})
		if err != nil {
			return err
		}
		for _, h := range hs {
			a, err := p.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil), pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
			if err != nil {
				return fmt.Errorf("C_GetAttributeValue %d: %w", h, err)
			}
			fmt.Fprintf(w, "%d %s %x\n", h, a[0].Value, a[1].Value)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return p.Finalize()
}

// helperWriter: writer PREFIX logs in, prints READY, then creates token
// objects PREFIX-0, PREFIX-1, ... (writerObject) until killed, printing
// "HANDLE LABEL" once each C_CreateObject has returned CKR_OK. os.Stdout
// is unbuffered: each line is one write(2) to the pipe.
func helperWriter(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: writer PREFIX")
	}
	p, s, err := helperSession()
	if err != nil {
		return err
	}
	fmt.Println("READY")
	for i := 0; ; i++ {
		label := fmt.Sprintf("%s-%d", args[0], i)
		h, err := p.CreateObject(s, writerObject(label, i))
		if err != nil {
			return fmt.Errorf("C_CreateObject %s: %w", label, err)
		}
		if _, err := fmt.Fprintf(os.Stdout, "%d %s\n", h, label); err != nil {
			return err
		}
	}
}

// helperShare: share OWNER-PIN LABEL USER shares the owner's private key
// labelled LABEL with USER through the Go token API (the management
// interface; Cryptoki has no sharing call). It runs in a process of its own:
// a second copy of SQLite in a process that has the library's open on the
// same files would break SQLite's per-process POSIX locks.
func helperShare(args []string) error {
	if len(args) != 3 {
		return errors.New("usage: share OWNER-PIN LABEL USER")
	}
	cfg, err := token.LoadConfig("")
	if err != nil {
		return err
	}
	m, err := token.Open(cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return err
	}
	if err := m.Login(h, ck.CKU_USER, []byte(args[0])); err != nil {
		return err
	}
	if err := m.FindObjectsInit(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)),
		ck.CKA_LABEL: []byte(args[1]),
	}); err != nil {
		return err
	}
	objs, err := m.FindObjects(h, 10)
	if err != nil {
		return err
	}
	if err := m.FindObjectsFinal(h); err != nil {
		return err
	}
	if len(objs) != 1 {
		return fmt.Errorf("found %d keys labelled %q, want 1", len(objs), args[1])
	}
	if err := m.Share(h, objs[0], args[2], true); err != nil {
		return err
	}
	fmt.Println("SHARED", objs[0])
	return nil
}
