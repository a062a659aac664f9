package hosts

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// gateEnv makes a helper reply "OK 0 LOADED" once the library is loaded and
// wait for a line on stdin before C_Initialize.
const gateEnv = "GOHSM_HOSTS_GATE"

// helperMain is a host's process: it loads $GOHSM_LIB, calls C_Initialize
// (NULL pReserved: the configuration is $GOHSM_CONF), replies to that, and
// then runs the commands it reads on stdin, one a line, replying to each
// with one line (see reply). It returns the exit code.
//
//	inittoken SOPIN LABEL   C_InitToken on slot 0
//	open N                  open N more R/W sessions (the first is session 0)
//	login so|user PIN       C_Login on session 0 (every session is then logged in)
//	logout                  C_Logout
//	initpin PIN             C_InitPIN (as the officer)
//	create LABEL            a token data object: OK HANDLE
//	createmany PREFIX N     N token data objects PREFIX-0.. made concurrently, one
//	                        goroutine per session: OK HANDLE:LABEL...
//	find LABEL              C_FindObjects on the label: OK HANDLE...
//	list                    every data object: OK HANDLE:LABEL...
//	values                  every data object: OK HANDLE:LABEL:VALUE-HEX...
//	labels HANDLE...        CKA_LABEL of each: OK LABEL...
//	destroy HANDLE          C_DestroyObject: OK UNIX-NANOS (when it returned)
//	watchgone HANDLE        reply "OK 0 WATCHING", then poll C_GetAttributeValue
//	                        until CKR_OBJECT_HANDLE_INVALID: OK UNIX-NANOS POLLS (first seen)
//	genec LABEL             a P-256 token key pair: OK PUBLIC PRIVATE
//	sign HANDLE             CKM_ECDSA of a digest on session 0: OK
//	createkeys LABEL AES-HEX EC-HEX  an AES key and a P-256 private key of
//	                        those values (sensitive token keys): OK AES EC
//	writer PREFIX           reply OK, then create data objects PREFIX-0.. forever,
//	                        printing "W HANDLE LABEL" after each CKR_OK
//	loadstart KEY           sign with KEY and create objects, in two goroutines on
//	                        sessions of their own, until loadstop: OK
//	loadstop                OK EVENTS-JSON (loadEvent)
//	quit                    C_Finalize, exit 0
func helperMain() int {
	p := pkcs11.New(os.Getenv("GOHSM_LIB"))
	if p == nil {
		fmt.Printf("FAIL 0 dlopen %s failed\n", os.Getenv("GOHSM_LIB"))
		return 1
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 16<<20)
	if os.Getenv(gateEnv) != "" {
		os.Stdout.WriteString("OK 0 LOADED\n")
		if !in.Scan() {
			return 1
		}
	}
	start := time.Now()
	if err := p.Initialize(); err != nil {
		printReply(start, "", err)
		return 0
	}
	printReply(start, "", nil)
	hp := &helperProc{p: p}
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "quit" {
			hp.stopLoad()
			start := time.Now()
			printReply(start, "", p.Finalize())
			return 0
		}
		start := time.Now()
		out, err := hp.run(f[0], f[1:])
		printReply(start, out, err)
	}
	return 1
}

// printReply prints one reply line: OK, RV (a Cryptoki error) or FAIL,
// with the microseconds since start. It is one write(2).
func printReply(start time.Time, out string, err error) {
	us := time.Since(start).Microseconds()
	var line string
	var rv pkcs11.Error
	switch {
	case err == nil:
		line = fmt.Sprintf("OK %d %s", us, out)
	case errors.As(err, &rv):
		line = fmt.Sprintf("RV %d %#x %s", us, uint(rv), strings.ReplaceAll(err.Error(), "\n", " "))
	default:
		line = fmt.Sprintf("FAIL %d %s", us, strings.ReplaceAll(err.Error(), "\n", " "))
	}
	os.Stdout.WriteString(strings.TrimRight(line, " ") + "\n")
}

type helperProc struct {
	p    *pkcs11.Ctx
	sess []pkcs11.SessionHandle
	load *load
}

func (hp *helperProc) s0() (pkcs11.SessionHandle, error) {
	if len(hp.sess) == 0 {
		return 0, errors.New("no session open")
	}
	return hp.sess[0], nil
}

func (hp *helperProc) run(cmd string, args []string) (string, error) {
	p := hp.p
	need := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%s: %d arguments, want %d", cmd, len(args), n)
		}
		return nil
	}
	handle := func(s string) (pkcs11.ObjectHandle, error) {
		v, err := strconv.ParseUint(s, 10, 64)
		return pkcs11.ObjectHandle(v), err
	}
	switch cmd {
	case "inittoken":
		if err := need(2); err != nil {
			return "", err
		}
		return "", p.InitToken(0, args[0], args[1])
	case "open":
		if err := need(1); err != nil {
			return "", err
		}
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return "", err
		}
		for range n {
			s, err := p.OpenSession(0, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
			if err != nil {
				return "", err
			}
			hp.sess = append(hp.sess, s)
		}
		return "", nil
	case "login":
		if err := need(2); err != nil {
			return "", err
		}
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		ut := uint(pkcs11.CKU_USER)
		if args[0] == "so" {
			ut = pkcs11.CKU_SO
		}
		return "", p.Login(s, ut, args[1])
	case "logout":
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		return "", p.Logout(s)
	case "initpin":
		if err := need(1); err != nil {
			return "", err
		}
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		return "", p.InitPIN(s, args[0])
	case "create":
		if err := need(1); err != nil {
			return "", err
		}
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		h, err := p.CreateObject(s, dataObject(args[0]))
		return fmt.Sprint(h), err
	case "createmany":
		if err := need(2); err != nil {
			return "", err
		}
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return "", err
		}
		return hp.createMany(args[0], n)
	case "find":
		if err := need(1); err != nil {
			return "", err
		}
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		hs, err := findAll(p, s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, args[0])})
		return joinHandles(hs), err
	case "list", "values":
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		hs, err := findAll(p, s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA)})
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, h := range hs {
			a, err := p.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil), pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
			if err != nil {
				return "", fmt.Errorf("C_GetAttributeValue %d: %w", h, err)
			}
			fmt.Fprintf(&b, "%d:%s", h, a[0].Value)
			if cmd == "values" {
				fmt.Fprintf(&b, ":%x", a[1].Value)
			}
			b.WriteByte(' ')
		}
		return b.String(), nil
	case "labels":
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		var labels []string
		for _, a := range args {
			h, err := handle(a)
			if err != nil {
				return "", err
			}
			v, err := p.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
			if err != nil {
				return "", fmt.Errorf("C_GetAttributeValue %d: %w", h, err)
			}
			labels = append(labels, string(v[0].Value))
		}
		return strings.Join(labels, " "), nil
	case "destroy":
		if err := need(1); err != nil {
			return "", err
		}
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		h, err := handle(args[0])
		if err != nil {
			return "", err
		}
		err = p.DestroyObject(s, h)
		return fmt.Sprint(time.Now().UnixNano()), err
	case "watchgone":
		if err := need(1); err != nil {
			return "", err
		}
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		h, err := handle(args[0])
		if err != nil {
			return "", err
		}
		os.Stdout.WriteString("OK 0 WATCHING\n")
		deadline := time.Now().Add(30 * time.Second)
		for polls := 1; ; polls++ {
			_, err := p.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
			now := time.Now()
			if errors.Is(err, pkcs11.Error(pkcs11.CKR_OBJECT_HANDLE_INVALID)) {
				return fmt.Sprintf("%d %d", now.UnixNano(), polls), nil
			}
			if err != nil {
				return "", fmt.Errorf("poll %d: %w", polls, err)
			}
			if now.After(deadline) {
				return "", fmt.Errorf("object %d still there after 30 s (%d polls)", h, polls)
			}
			time.Sleep(100 * time.Microsecond)
		}
	case "genec":
		if err := need(1); err != nil {
			return "", err
		}
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		pub, priv, err := p.GenerateKeyPair(s, mech(pkcs11.CKM_EC_KEY_PAIR_GEN),
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, p256),
				pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, args[0]),
			}, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, args[0]),
			})
		return fmt.Sprintf("%d %d", pub, priv), err
	case "sign":
		if err := need(1); err != nil {
			return "", err
		}
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		h, err := handle(args[0])
		if err != nil {
			return "", err
		}
		return "", sign(p, s, h)
	case "createkeys":
		if err := need(3); err != nil {
			return "", err
		}
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		aes, err1 := hex.DecodeString(args[1])
		ec, err2 := hex.DecodeString(args[2])
		if err := errors.Join(err1, err2); err != nil {
			return "", err
		}
		a, err := p.CreateObject(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, args[0]+"-aes"),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, aes),
		})
		if err != nil {
			return "", fmt.Errorf("AES key: %w", err)
		}
		e, err := p.CreateObject(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, p256),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, args[0]+"-ec"),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, ec),
		})
		if err != nil {
			return "", fmt.Errorf("EC key: %w", err)
		}
		return fmt.Sprintf("%d %d", a, e), nil
	case "writer":
		if err := need(1); err != nil {
			return "", err
		}
		s, err := hp.s0()
		if err != nil {
			return "", err
		}
		os.Stdout.WriteString("OK 0 WRITING\n")
		for i := 0; ; i++ {
			label := fmt.Sprintf("%s-%d", args[0], i)
			h, err := p.CreateObject(s, dataObject(label))
			if err != nil {
				return "", fmt.Errorf("C_CreateObject %s: %w", label, err)
			}
			if _, err := fmt.Fprintf(os.Stdout, "W %d %s\n", h, label); err != nil {
				return "", err
			}
		}
	case "loadstart":
		if err := need(1); err != nil {
			return "", err
		}
		h, err := handle(args[0])
		if err != nil {
			return "", err
		}
		return "", hp.startLoad(h)
	case "loadstop":
		if hp.load == nil {
			return "", errors.New("no load running")
		}
		evs := hp.stopLoad()
		b, err := json.Marshal(evs)
		return string(b), err
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

// createMany creates n data objects prefix-0.. with one goroutine per
// open session, each taking the next number.
func (hp *helperProc) createMany(prefix string, n int) (string, error) {
	if len(hp.sess) == 0 {
		return "", errors.New("no session open")
	}
	var next atomic.Int64
	var mu sync.Mutex
	var out []string
	var errs []error
	var wg sync.WaitGroup
	for _, s := range hp.sess {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				label := fmt.Sprintf("%s-%d", prefix, i)
				h, err := hp.p.CreateObject(s, dataObject(label))
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("C_CreateObject %s: %w", label, err))
				} else {
					out = append(out, fmt.Sprintf("%d:%s", h, label))
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return "", errs[0]
	}
	return strings.Join(out, " "), nil
}

// loadEvent is one call of the load: kind "sign" or "create", when it
// began (Unix nanoseconds), how long it took, its CK_RV, and for a create
// the label and handle.
type loadEvent struct {
	Kind   string `json:"k"`
	Start  int64  `json:"t"`
	Dur    int64  `json:"d"`
	RV     uint   `json:"rv"`
	Label  string `json:"l,omitempty"`
	Handle uint   `json:"h,omitempty"`
	Err    string `json:"e,omitempty"`
}

type load struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	evs  []loadEvent
}

// loadPause is the pause between two calls of one load goroutine: the
// load is a steady trickle, not a benchmark.
const loadPause = 5 * time.Millisecond

func (hp *helperProc) startLoad(key pkcs11.ObjectHandle) error {
	if hp.load != nil {
		return errors.New("a load is running")
	}
	var ss [2]pkcs11.SessionHandle
	for i := range ss {
		s, err := hp.p.OpenSession(0, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return err
		}
		ss[i] = s
	}
	// The key is used once before the load: it is in this process's cache.
	if err := sign(hp.p, ss[0], key); err != nil {
		return fmt.Errorf("first sign: %w", err)
	}
	l := &load{stop: make(chan struct{})}
	hp.load = l
	record := func(e loadEvent, err error) {
		var rv pkcs11.Error
		if errors.As(err, &rv) {
			e.RV = uint(rv)
		} else if err != nil {
			e.RV = ^uint(0)
			e.Err = err.Error()
		}
		l.mu.Lock()
		l.evs = append(l.evs, e)
		l.mu.Unlock()
	}
	loop := func(call func(i int)) {
		defer l.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			call(i)
			time.Sleep(loadPause)
		}
	}
	l.wg.Add(2)
	go loop(func(int) {
		t := time.Now()
		err := sign(hp.p, ss[0], key)
		record(loadEvent{Kind: "sign", Start: t.UnixNano(), Dur: int64(time.Since(t))}, err)
	})
	pid := os.Getpid()
	go loop(func(i int) {
		label := fmt.Sprintf("load-%d-%d", pid, i)
		t := time.Now()
		h, err := hp.p.CreateObject(ss[1], dataObject(label))
		e := loadEvent{Kind: "create", Start: t.UnixNano(), Dur: int64(time.Since(t)), Label: label}
		if err == nil {
			e.Handle = uint(h)
		}
		record(e, err)
	})
	return nil
}

func (hp *helperProc) stopLoad() []loadEvent {
	l := hp.load
	if l == nil {
		return nil
	}
	close(l.stop)
	l.wg.Wait()
	hp.load = nil
	return l.evs
}

func dataObject(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, "gohsm-hosts"),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("value of "+label)),
	}
}

// dataValue is the CKA_VALUE of dataObject(label).
func dataValue(label string) []byte { return []byte("value of " + label) }

// p256 is the DER of the P-256 curve's OID, CKA_EC_PARAMS.
var p256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

func mech(m uint) []*pkcs11.Mechanism { return []*pkcs11.Mechanism{pkcs11.NewMechanism(m, nil)} }

// sign is C_SignInit and C_Sign (CKM_ECDSA of a SHA-256-sized digest).
func sign(p *pkcs11.Ctx, s pkcs11.SessionHandle, k pkcs11.ObjectHandle) error {
	if err := p.SignInit(s, mech(pkcs11.CKM_ECDSA), k); err != nil {
		return fmt.Errorf("C_SignInit: %w", err)
	}
	if _, err := p.Sign(s, make([]byte, 32)); err != nil {
		return fmt.Errorf("C_Sign: %w", err)
	}
	return nil
}

func findAll(p *pkcs11.Ctx, s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := p.FindObjectsInit(s, tmpl); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %w", err)
	}
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := p.FindObjects(s, 256)
		if err != nil {
			_ = p.FindObjectsFinal(s)
			return nil, fmt.Errorf("C_FindObjects: %w", err)
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	if err := p.FindObjectsFinal(s); err != nil {
		return nil, fmt.Errorf("C_FindObjectsFinal: %w", err)
	}
	return all, nil
}

func joinHandles(hs []pkcs11.ObjectHandle) string {
	f := make([]string, len(hs))
	for i, h := range hs {
		f[i] = fmt.Sprint(h)
	}
	return strings.Join(f, " ")
}
