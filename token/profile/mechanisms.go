package profile

// Mechanisms is what the profile decides about mechanisms. (Filled in by the issue-14
// work on this area; see docs/cloudhsm.md.)
type Mechanisms struct{}

func standardMechanisms() Mechanisms { return Mechanisms{} }

func cloudhsmMechanisms(s Settings) Mechanisms { return Mechanisms{} }
