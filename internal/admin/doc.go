// Package admin holds the operator operations that the gohsm command and
// the console (internal/console) both run, over a *token.Module and a
// session handle, so that no rule or output shape is written twice:
//
//   - keys: list with filters, one key's readable attributes by name,
//     generate (AES, EC, RSA), import (PEM or a raw AES key), delete,
//     share and unshare, set-trusted (keys.go, attributes.go, import.go);
//   - the login rule: which user type (CKU_SO, CKU_USER) a user logs in
//     as (login.go);
//   - audit query and verification (audit.go), the token status row
//     (status.go) and a backup written to an io.Writer (backup.go);
//   - the error mapping: an error's CKR name and stable code (errors.go),
//     from which the CLI's --json error and the console's HTTP error are
//     both made.
//
// Users are token.Module's Users, CreateUser, DeleteUser and
// ChangePassword, their refusals the token's; users.go adds only a
// lookup by name and CreateUser with a role word, as the CLI takes it. Every operation is the token's to allow or refuse (roles,
// ownership, quorum, the profile's rules); admin only shapes requests and
// results. The types keep the JSON tags of `gohsm --json` output.
package admin
