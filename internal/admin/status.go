package admin

import (
	"errors"

	"gohsm/internal/ck"
	"gohsm/token"
)

// tokenFlags names the CK_TOKEN_INFO flags worth showing.
var tokenFlags = []struct {
	f    ck.ULong
	name string
}{
	{ck.CKF_TOKEN_INITIALIZED, "initialized"},
	{ck.CKF_LOGIN_REQUIRED, "login-required"},
	{ck.CKF_USER_PIN_INITIALIZED, "user-pin-initialized"},
	{ck.CKF_USER_PIN_COUNT_LOW, "user-pin-count-low"},
	{ck.CKF_USER_PIN_FINAL_TRY, "user-pin-final-try"},
	{ck.CKF_USER_PIN_LOCKED, "user-pin-locked"},
	{ck.CKF_SO_PIN_COUNT_LOW, "so-pin-count-low"},
	{ck.CKF_SO_PIN_FINAL_TRY, "so-pin-final-try"},
	{ck.CKF_SO_PIN_LOCKED, "so-pin-locked"},
}

// TokenStatus is one slot's row of `gohsm token list`.
type TokenStatus struct {
	Slot        ck.ULong `json:"slot"`
	Label       string   `json:"label"`
	Serial      string   `json:"serial"`
	Model       string   `json:"model"`
	Initialized bool     `json:"initialized"`
	// Damaged: the token cannot be read, or lost its record while users
	// or objects remain (CKR_TOKEN_NOT_RECOGNIZED); the other slots are
	// still listed.
	Damaged     bool     `json:"damaged"`
	Users       int      `json:"users"`
	LockedUsers []string `json:"locked_users"`
	Flags       []string `json:"flags"`
	Dir         string   `json:"dir"`
}

// Status reads slot id's row. It opens a session of its own on m (the
// user count needs one) and closes it; no login is needed.
func Status(m *token.Module, id ck.ULong) (TokenStatus, error) {
	s, err := m.Slot(id)
	if err != nil {
		return TokenStatus{}, err
	}
	ti, err := s.TokenInfo()
	if errors.Is(err, ck.CKR_TOKEN_NOT_RECOGNIZED) {
		return TokenStatus{Slot: id, Damaged: true, LockedUsers: []string{}, Flags: []string{}, Dir: s.Config().Dir}, nil
	}
	if err != nil {
		return TokenStatus{}, err
	}
	r := TokenStatus{Slot: id, Label: ti.Label, Serial: ti.SerialNumber, Model: ti.Model,
		Initialized: ti.Initialized, LockedUsers: []string{}, Flags: []string{}, Dir: s.Config().Dir}
	for _, f := range tokenFlags {
		if ti.Flags&f.f != 0 {
			r.Flags = append(r.Flags, f.name)
		}
	}
	if r.Initialized {
		// R/W: the cloudhsm profile has no read-only sessions.
		h, err := m.OpenSession(id, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		if err != nil {
			return TokenStatus{}, err
		}
		users, err := m.Users(h)
		m.CloseSession(h)
		if err != nil {
			return TokenStatus{}, err
		}
		r.Users = len(users)
		for _, u := range users {
			if u.Locked {
				r.LockedUsers = append(r.LockedUsers, u.Name)
			}
		}
	}
	return r, nil
}
