package profile

// Limits is what the profile decides about limits. (Filled in by the issue-14
// work on this area; see docs/cloudhsm.md.)
type Limits struct{}

func standardLimits() Limits { return Limits{} }

func cloudhsmLimits(s Settings) Limits { _ = s; return Limits{} }
