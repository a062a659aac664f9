// Package cluster emulates the AWS CloudHSM cluster behind a slot
// (docs/cluster.md): several HSMs with identities and states (up, down,
// degraded), the routing of operations across them, the key availability
// quorum, per-HSM throttling budgets with the Client SDK's retry, a
// latency model, and a fault plan replayed deterministically from a seed.
//
// Everything that processes must agree on lives in one shared-memory file
// next to the token (state.go, file "cluster.state" in the slot directory):
// HSM states, budgets, counters, the loaded fault plan and its cursors, and
// the token keys created recently with the HSM each was made on. Nothing
// here writes the token store per operation; the token records audit
// events the cluster reports through Config.Notify.
//
// The decisions the package implements (issue 16):
//
//   - Routing (route.go): an operation gets a Route at C_*Init, round
//     robin (a process-local counter, as the SDK's) over the reachable
//     HSMs that hold its token key. Each call that reaches an HSM is
//     Admitted: a down HSM fails over to another reachable one holding
//     the key (the SDK fails over); a session key's route is pinned and
//     fails with ErrKeyLost once its HSM went down (its epoch moved, even
//     if it is back: the HSM rebooted).
//   - Key availability (route.go): a token key created now is on its
//     origin HSM at once and on each other reachable HSM after
//     replication_delay, counted from max(created, that HSM's up-since).
//     A process verifies a key at its first use and keeps using it
//     (UG:troubleshoot-key-availability-check); fewer than 2 reachable
//     HSMs holding it fails with CKR_FUNCTION_FAILED and the SDK's line.
//     Creating a token key with fewer than 2 reachable HSMs fails before
//     anything is stored.
//   - Throttling (throttle.go): a GCRA budget per HSM and class in the
//     file, burst a tenth of a second of budget; retry standard retries
//     3 times after 5, 10, 20 ms, each free to fail over; certificate
//     storage is never retried (a read: CKR_DEVICE_ERROR).
//   - Latency (config.go, faults.go): per-class distributions, the
//     `cloudhsm` preset derived from AWS's published rates plus a network
//     round trip of our choosing; degraded HSMs add degraded_latency.
//   - Fault plan (faults.go, plan.go): steps relative to the plan's load,
//     fired lazily by the first call of any process after their time,
//     once across processes (CAS); draws are a pure function of (seed,
//     step, n-th matching call).
//
// The hot path: a slot whose cluster is off has no *Cluster at all (one
// nil comparison per call). With it on and nothing configured, Admit is
// three atomic loads and one atomic add on the mapped file, with no clock
// read, lock or allocation; Fault and StoreDown are one atomic load.
package cluster

import (
	"errors"
	"fmt"
	"time"

	"gohsm/internal/ck"
)

// MaxHSMs is the most emulated HSMs a cluster has (CloudHSM allows 28 per
// cluster; the file's layout is fixed at this size).
const MaxHSMs = 32

// Class is an operation class: each HSM has its own ops/s budget, counters
// and latency per class.
type Class uint8

const (
	ClassNone      Class = iota // local to the client (SDK 5 hashes locally): no HSM, no budget
	ClassRSASign                // RSA private-key operations: sign, decrypt, unwrap
	ClassRSAVerify              // RSA public-key operations: verify, encrypt, wrap
	ClassECSign                 // ECDSA sign, ECDH derive
	ClassECVerify               // ECDSA verify
	ClassSymmetric              // AES/3DES encrypt, decrypt, wrap, unwrap
	ClassHMAC                   // HMAC/CMAC sign and verify
	ClassKeyGen                 // key and key-pair generation
	ClassRandom                 // C_GenerateRandom
	ClassManage                 // object and user management: create, destroy, set attributes, find, login
	ClassCertRead               // certificate storage reads (C_FindObjectsInit, C_GetAttributeValue on a certificate)
	ClassCertWrite              // certificate storage writes (create, set attributes, destroy a certificate)
	NumClasses
)

var classNames = [NumClasses]string{"none", "rsa-sign", "rsa-verify", "ec-sign", "ec-verify", "symmetric", "hmac", "keygen", "random", "manage", "cert-read", "cert-write"}

// String is the class's name in configuration, plans and status.
func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "class?"
}

// ParseClass is the class named s.
func ParseClass(s string) (Class, bool) {
	for i, n := range classNames {
		if n == s && i != int(ClassNone) {
			return Class(i), true
		}
	}
	return 0, false
}

// State is an emulated HSM's state.
type State uint32

const (
	Up       State = iota
	Down           // unreachable: nothing is routed to it; its session keys are lost
	Degraded       // reachable, answers after an added delay (Config.DegradedLatency)
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	case Degraded:
		return "degraded"
	}
	return "state?"
}

// ParseState is the state named s.
func ParseState(s string) (State, bool) {
	for _, st := range []State{Up, Down, Degraded} {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

// StreamName is the audit stream of HSM i: "hsm-0", "hsm-1", ... (a token
// of one HSM keeps the one stream it always had, store.DefaultStream).
func StreamName(i int) string { return "hsm-" + itoa(i) }

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// RetryMode is the Client SDK's retry of throttled operations
// (--default-retry-mode; standard is SDK 5.8.0's default).
type RetryMode uint8

const (
	RetryStandard RetryMode = iota // up to 3 retries, backing off exponentially
	RetryOff
)

// Func names a PKCS#11 function a fault plan can fail ("C_Sign"). The
// token passes the function it is answering to Cluster.Fault.
type Func uint8

// The functions a plan may name; FuncNames maps them to their C names.
const (
	FuncNone Func = iota
	FuncOpenSession
	FuncLogin
	FuncLogout
	FuncFindObjectsInit
	FuncFindObjects
	FuncGetAttributeValue
	FuncSetAttributeValue
	FuncCreateObject
	FuncDestroyObject
	FuncGenerateKey
	FuncGenerateKeyPair
	FuncWrapKey
	FuncUnwrapKey
	FuncDeriveKey
	FuncGenerateRandom
	FuncEncryptInit
	FuncEncrypt
	FuncEncryptUpdate
	FuncEncryptFinal
	FuncDecryptInit
	FuncDecrypt
	FuncDecryptUpdate
	FuncDecryptFinal
	FuncSignInit
	FuncSign
	FuncSignUpdate
	FuncSignFinal
	FuncVerifyInit
	FuncVerify
	FuncVerifyUpdate
	FuncVerifyFinal
	FuncDigestInit
	FuncDigest
	NumFuncs
)

// FuncNames are the C names of the functions, by Func.
var FuncNames = [NumFuncs]string{"", "C_OpenSession", "C_Login", "C_Logout", "C_FindObjectsInit", "C_FindObjects",
	"C_GetAttributeValue", "C_SetAttributeValue", "C_CreateObject", "C_DestroyObject", "C_GenerateKey",
	"C_GenerateKeyPair", "C_WrapKey", "C_UnwrapKey", "C_DeriveKey", "C_GenerateRandom",
	"C_EncryptInit", "C_Encrypt", "C_EncryptUpdate", "C_EncryptFinal",
	"C_DecryptInit", "C_Decrypt", "C_DecryptUpdate", "C_DecryptFinal",
	"C_SignInit", "C_Sign", "C_SignUpdate", "C_SignFinal",
	"C_VerifyInit", "C_Verify", "C_VerifyUpdate", "C_VerifyFinal",
	"C_DigestInit", "C_Digest"}

// Errors the cluster answers with. Each wraps the CKR the application
// sees (pkcs11's rv() takes the ck.RV an error wraps).
var (
	// ErrThrottled: the HSM's budget for the class is spent and the retry
	// mode did not absorb it (HSM response 187/0xBB, "This operation is
	// already in progress"; SDK 5 answers CKR_FUNCTION_FAILED).
	ErrThrottled = fmt.Errorf("cluster: HSM throttled the operation (HSM response 187/0xBB): %w", ck.CKR_FUNCTION_FAILED)
	// ErrCertThrottled: a throttled certificate-storage read through
	// C_GetAttributeValue (CKR_DEVICE_ERROR, never retried).
	ErrCertThrottled = fmt.Errorf("cluster: HSM throttled the certificate read: %w", ck.CKR_DEVICE_ERROR)
	// ErrNoHSM: no HSM that can take the operation is up.
	ErrNoHSM = fmt.Errorf("cluster: no HSM of the cluster is reachable: %w", ck.CKR_DEVICE_ERROR)
	// ErrKeyAvailability: the key availability quorum is not met (the
	// SDK's log line is the error's text).
	ErrKeyAvailability = errors.New("cluster: key availability")
	// ErrStoreDown: a fault plan has dropped the store.
	ErrStoreDown = fmt.Errorf("cluster: the token store is unreachable (fault plan): %w", ck.CKR_DEVICE_ERROR)
)

// Event is something the cluster did that belongs in the audit log: an
// HSM's state changed, a fault was injected, a plan was loaded or cleared.
// HSM is the stream's HSM (-1: not one HSM's, the token records it in
// every stream).
type Event struct {
	HSM    int
	Kind   EventKind
	Func   Func   // FaultInjected: the function failed
	RV     ck.RV  // FaultInjected: the CKR it was failed with
	State  State  // StateChanged: the new state
	Step   int    // the plan step that caused it, -1 for none (a CLI command)
	Detail string // words for the log's Detail line
}

// EventKind says what an Event is.
type EventKind uint8

const (
	StateChanged EventKind = iota + 1
	FaultInjected
	PlanLoaded
	PlanCleared
	StoreDropped
	StoreRestored
)

// Config is a slot's cluster settings (keys of its section, docs/config.md).
type Config struct {
	// On: the slot has an emulated cluster. Off (standard's default, with
	// none of the keys below set): no *Cluster, no cost.
	On bool
	// HSMs is the number of emulated HSMs (1..MaxHSMs; cloudhsm: 2).
	HSMs int
	// KeyAvailabilityCheck: a token key is usable only once it is on 2
	// HSMs (SDK 5's default; --disable-key-availability-check).
	KeyAvailabilityCheck bool
	// ReplicationDelay is how long a new token key takes to reach the
	// other HSMs (0: at once, as client-side sync does).
	ReplicationDelay time.Duration
	// Throttle names the preset budgets: "off", "hsm1", "hsm2m".
	Throttle string
	// Budgets are ops/s per HSM by class (0: unlimited); the preset's,
	// with the slot's throttle.<class> keys over them.
	Budgets [NumClasses]float64
	// Retry is the SDK's retry of throttled operations.
	Retry RetryMode
	// Latency is the added latency per class (nil entry: none); the
	// latency preset's, with latency.<class> keys over them.
	Latency [NumClasses]*Dist
	// DegradedLatency is added to every operation a degraded HSM answers.
	DegradedLatency time.Duration
	// FaultPlan is a plan file loaded when the shared state holds none, or
	// an older version of this file's contents.
	FaultPlan string
	// Seed seeds every random draw of the fault plan and the latency
	// model (a plan's own seed wins).
	Seed uint64
	// Notify receives the events to audit. It may be called from any
	// goroutine, with no lock of the cluster held; nil: dropped.
	Notify func(Event)
	// Log receives lines for the module's log (the SDK's log lines: the
	// key availability message, throttling); nil: dropped.
	Log func(msg string, args ...any)

	// What Set read, kept so that a class key wins over its preset in
	// any order (resolve).
	budgetSet     [NumClasses]bool
	budgetOver    [NumClasses]float64
	latencyPreset string
	latencyAll    *Dist
	latencyOver   [NumClasses]*Dist
}

// DefaultConfig is a profile's cluster before the slot's keys: cloudhsm
// has 2 HSMs with the key availability check on and standard retry;
// standard has none (On false, 1 HSM).
func DefaultConfig(profile string) Config {
	if profile == "cloudhsm" {
		return Config{On: true, HSMs: 2, KeyAvailabilityCheck: true, Throttle: "off", Retry: RetryStandard, DegradedLatency: 50 * time.Millisecond}
	}
	return Config{HSMs: 1, Throttle: "off", Retry: RetryStandard, DegradedLatency: 50 * time.Millisecond}
}

// Keys are the slot keys Set takes (prefixes end in '.').
var Keys = []string{"cluster", "hsms", "key_availability_check", "replication_delay", "throttle", "throttle.", "retry_mode", "latency", "latency.", "degraded_latency", "fault_plan", "fault_seed"}

// Dist is a latency distribution: fixed, uniform between two values, or
// normal (truncated at 0), drawn deterministically from the seed.
type Dist struct {
	Kind DistKind
	A, B time.Duration // fixed: A; uniform: [A, B]; normal: mean A, deviation B
}

// DistKind is a Dist's shape.
type DistKind uint8

const (
	Fixed DistKind = iota
	Uniform
	Normal
)

// Status is the cluster as `gohsm cluster status --json` prints it.
type Status struct {
	HSMs  []HSMStatus `json:"hsms"`
	Check bool        `json:"key_availability_check"`
	Retry string      `json:"retry_mode"`
	// Plan is the loaded plan's steps with what is pending; nil: none.
	Plan *PlanStatus `json:"plan,omitempty"`
	// StoreDownUntil is set while a plan has dropped the store.
	StoreDownUntil *time.Time `json:"store_down_until,omitempty"`
}

// HSMStatus is one HSM in Status.
type HSMStatus struct {
	Index   int           `json:"index"`
	ID      string        `json:"id"`      // its audit stream's name
	State   string        `json:"state"`   // up, down, degraded
	Since   time.Time     `json:"since"`   // when it entered the state
	Epoch   uint32        `json:"epoch"`   // times it went down
	Classes []ClassStatus `json:"classes"` // classes with a budget or with calls
}

// ClassStatus is one class of one HSM.
type ClassStatus struct {
	Class     string  `json:"class"`
	Budget    float64 `json:"budget_per_second"` // 0: unlimited
	Used      float64 `json:"used_per_second"`   // over the last second
	Calls     uint64  `json:"calls"`
	Throttled uint64  `json:"throttled"`
	Retried   uint64  `json:"retried"`
	Failed    uint64  `json:"faults_injected"`
}

// PlanStatus is the loaded plan in Status.
type PlanStatus struct {
	Seed   uint64       `json:"seed"`
	Loaded time.Time    `json:"loaded"`
	Steps  []StepStatus `json:"steps"`
}

// StepStatus is one step of the plan.
type StepStatus struct {
	Index     int    `json:"index"`
	Step      string `json:"step"`                // the step in words
	State     string `json:"state"`               // pending, active, done
	Remaining int64  `json:"remaining,omitempty"` // fail steps: calls left to fail
}

// Plan is a fault plan (docs/cluster.md has the format).
type Plan struct {
	Seed  uint64 `json:"seed"`
	Steps []Step `json:"steps"`
}

// Step is one entry of a plan: at At after the plan starts (and for For,
// when it lasts), one of: an HSM's state, failing calls of a function,
// latency on a class, the store dropped.
type Step struct {
	At  Duration `json:"at"`
	For Duration `json:"for,omitempty"`
	// HSM state: take HSM k down, bring it up, degrade it; with For,
	// the HSM is brought back up when the step ends.
	HSM   *int   `json:"hsm,omitempty"`
	State string `json:"state,omitempty"`
	// Fail calls of a function: the next Count calls (0: every call while
	// the step lasts), or each with Probability, with RV.
	Fail        string  `json:"fail,omitempty"` // "C_Sign"
	Count       int64   `json:"count,omitempty"`
	Probability float64 `json:"probability,omitempty"`
	RV          string  `json:"rv,omitempty"` // "CKR_DEVICE_ERROR"
	// Latency on a class ("all" for every class): a Dist as ParseDist reads it.
	Latency string `json:"latency,omitempty"`
	Class   string `json:"class,omitempty"`
	// Store: "down" drops the store for For (For > 0 required).
	Store string `json:"store,omitempty"`
}

// Duration is a time.Duration written as "2s", "150ms" in JSON.
type Duration time.Duration
