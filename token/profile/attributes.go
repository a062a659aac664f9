package profile

// Attributes is what the profile decides about attributes. (Filled in by the issue-14
// work on this area; see docs/cloudhsm.md.)
type Attributes struct{}

func standardAttributes() Attributes { return Attributes{} }

func cloudhsmAttributes(s Settings) Attributes { return Attributes{} }
