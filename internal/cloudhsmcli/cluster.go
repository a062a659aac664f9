package cloudhsmcli

import (
	"errors"
	"flag"
	"fmt"
	"strconv"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/cluster"
)

// cluster activate and cluster hsm-info.
//
// A gohsm token is one cluster of one HSM. CloudHSM's never-activated
// cluster, whose first HSM holds the "unactivated admin" (PRECO) user
// named admin, is an uninitialised token (UG-2023:activate-cluster.md);
// cluster activate sets that admin's password, which is C_InitToken with
// the PIN "admin:<password>": the token is initialised with one crypto
// officer named admin. `gohsm token init` stays the other way in.
func init() {
	register(
		Command{Path: []string{"cluster", "activate"}, Help: "Activate a cluster", Role: Anyone, Setup: clusterActivate},
		Command{Path: []string{"cluster", "hsm-info"}, Help: "List info about each HSM in the cluster", Role: Anyone, Setup: clusterHSMInfo},
	)
}

// unactivatedAdmin is the user of a never-activated cluster, as user list
// shows it before cluster activate: the guide names it "unactivated admin"
// (UG:manage-hsm-users-chsm-cli) and shows no such list; the hyphenated
// role string is ours.
const unactivatedAdmin = "unactivated-admin"

// ErrActivated refuses a second cluster activate.
var ErrActivated = errors.New("The cluster is already activated")

// UG-2023:cloudhsm_cli-cluster-activate.md: prints "Cluster activation
// successful".
func clusterActivate(fs *flag.FlagSet) func(*Context) (any, error) {
	password := fs.String("password", "", "Optional: Plaintext activation password If you do not include this argument you will be prompted for it")
	return func(c *Context) (any, error) {
		m, s, err := c.Module()
		if err != nil {
			return nil, err
		}
		ti, err := s.TokenInfo()
		if err != nil {
			return nil, err
		}
		if ti.Initialized {
			return nil, ErrActivated
		}
		pw, err := c.newPassword(*password)
		if err != nil {
			return nil, err
		}
		defer clear(pw)
		if c.h != 0 {
			// C_InitToken wants no open session (a user list before
			// this command opened one).
			m.CloseSession(c.h)
			c.h, c.loggedIn = 0, false
		}
		label := ti.Label
		if label == "" {
			label = "cloudhsm"
		}
		if err := s.InitToken(append([]byte(token.DefaultCO+":"), pw...), label); err != nil {
			return nil, err
		}
		return "Cluster activation successful", nil
	}
}

// hsmInfo is one HSM of cluster hsm-info (UG:cloudhsm_cli-cluster-hsm-info):
// every value a string, as there. The page's ten fields, then three of
// gohsm's for the emulated cluster (docs/cluster.md): hsm-id, the HSM's
// audit stream ("hsm-0": CloudHSM names a stream after its HSM's ID),
// and state and state-message in the words of the cloudhsmv2 API's Hsm
// (API_Hsm: State ACTIVE, DEGRADED, ...; StateMessage "a description of
// the HSM's state").
type hsmInfo struct {
	Vendor               string `json:"vendor"`
	Model                string `json:"model"`
	SerialNumber         string `json:"serial-number"`
	HardwareVersionMajor string `json:"hardware-version-major"`
	HardwareVersionMinor string `json:"hardware-version-minor"`
	FirmwareVersionMajor string `json:"firmware-version-major"`
	FirmwareVersionMinor string `json:"firmware-version-minor"`
	FirmwareBuildNumber  string `json:"firmware-build-number"`
	FirmwareID           string `json:"firmware-id"`
	FIPSState            string `json:"fips-state"`
	HSMID                string `json:"hsm-id"`
	State                string `json:"state"`
	StateMessage         string `json:"state-message,omitempty"`
}

// fipsStates are hsm-info's fips-state for the slot's fips setting
// ("2 [FIPS mode with single factor authentication]" on the page; a
// non-FIPS hsm2m.medium cluster reports 0).
var fipsStates = map[bool]string{
	true:  "2 [FIPS mode with single factor authentication]",
	false: "0 [non-FIPS mode with single factor authentication]",
}

// apiStates are the cloudhsmv2 API's HSM states for an emulated HSM's:
// the API has no word for an HSM the client cannot reach, and AWS calls
// an unhealthy HSM DEGRADED until it replaces it; the message tells the
// two apart.
var apiStates = map[string][2]string{
	"up":       {"ACTIVE", ""},
	"degraded": {"DEGRADED", "degraded: answers every call after degraded_latency"},
	"down":     {"DEGRADED", "down: unreachable, nothing is routed to it"},
}

func clusterHSMInfo(fs *flag.FlagSet) func(*Context) (any, error) {
	return func(c *Context) (any, error) {
		_, s, err := c.Module()
		if err != nil {
			return nil, err
		}
		ti, err := s.TokenInfo()
		if err != nil {
			return nil, err
		}
		// A slot without an emulated cluster is one HSM, always up.
		states := []cluster.HSMStatus{{ID: cluster.StreamName(0), State: "up"}}
		if cl := s.Cluster(); cl != nil {
			states = cl.Status().HSMs
		}
		major, minor := strconv.Itoa(token.VersionMajor), strconv.Itoa(token.VersionMinor)
		hsms := []hsmInfo{}
		for i, st := range states {
			api := apiStates[st.State]
			hsms = append(hsms, hsmInfo{Vendor: ti.Manufacturer, Model: ti.Model,
				SerialNumber:         fmt.Sprintf("%s-%d", ti.SerialNumber, i),
				HardwareVersionMajor: major, HardwareVersionMinor: minor,
				FirmwareVersionMajor: major, FirmwareVersionMinor: minor, FirmwareBuildNumber: "0",
				FirmwareID: fmt.Sprintf("gohsm-%s-%s.%s", s.Config().Profile, major, minor),
				FIPSState:  fipsStates[s.Config().Settings.FIPS],
				HSMID:      st.ID, State: api[0], StateMessage: api[1]})
		}
		return map[string]any{"hsms": hsms}, nil
	}
}

// activated reports whether the token is initialised, with
// CKR_TOKEN_NOT_RECOGNIZED's "run cluster activate" when not.
func (c *Context) activated() error {
	_, s, err := c.Module()
	if err != nil {
		return err
	}
	ti, err := s.TokenInfo()
	if err != nil {
		return err
	}
	if !ti.Initialized {
		return fmt.Errorf("slot %d: %w", s.ID(), ck.CKR_TOKEN_NOT_RECOGNIZED)
	}
	return nil
}
