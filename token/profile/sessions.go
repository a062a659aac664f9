package profile

// Sessions is what the profile decides about sessions. (Filled in by the issue-14
// work on this area; see docs/cloudhsm.md.)
type Sessions struct{}

func standardSessions() Sessions { return Sessions{} }

func cloudhsmSessions(s Settings) Sessions { return Sessions{} }
