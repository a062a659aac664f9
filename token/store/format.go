package store

// FormatVersion is the token format this build writes (and Open upgrades
// older SQLite tokens to); PostgreSQL's schema version n holds what format
// n holds.
func FormatVersion() int { return formatVersion }
