package console

import (
	"encoding/hex"
	"net/http"
	"strconv"

	"gohsm/internal/admin"
	"gohsm/internal/ck"
)

// The keys endpoints: internal/admin's key operations (the CLI's), on the
// session's PKCS#11 session, so a crypto user sees and changes what the
// token lets it, no more.

// handle is the {handle} of the path.
func handle(c *call) (ck.ULong, error) {
	s := c.r.PathValue("handle")
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, badRequest("handle %q: want a key's handle (a number, as the key list gives it)", s)
	}
	return ck.ULong(n), nil
}

func (s *Server) listKeys(c *call) (int, any, error) {
	q := c.r.URL.Query()
	f := admin.Filter{Label: q.Get("label"), Class: q.Get("class"), KeyType: q.Get("key_type"), Owner: q.Get("owner")}
	if err := f.Check(); err != nil {
		return 0, nil, err
	}
	keys, err := admin.ListKeys(c.ws.m, c.ws.h, f)
	if err != nil {
		return 0, nil, err
	}
	if keys == nil {
		keys = []admin.Key{}
	}
	return http.StatusOK, map[string]any{"keys": keys}, nil
}

func (s *Server) getKey(c *call) (int, any, error) {
	obj, err := handle(c)
	if err != nil {
		return 0, nil, err
	}
	k, attrs, err := admin.Attributes(c.ws.m, c.ws.h, obj)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"key": k, "attributes": attrs}, nil
}

func (s *Server) generateKey(c *call) (int, any, error) {
	var g admin.GenSpec
	if err := decodeJSON(c.r, maxBody, &g); err != nil {
		return 0, nil, err
	}
	if err := g.Check(); err != nil {
		return 0, nil, err
	}
	keys, err := admin.Generate(c.ws.m, c.ws.h, g)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"keys": keys}, nil
}

// importRequest is POST /keys/import: a key in PEM or a raw AES key in
// hex, one of the two.
type importRequest struct {
	Label     string  `json:"label"`
	ID        string  `json:"id"`
	PEM       *string `json:"pem"`
	AESKeyHex *string `json:"aes_key_hex"`
}

func (s *Server) importKey(c *call) (int, any, error) {
	var req importRequest
	if err := decodeJSON(c.r, maxBody, &req); err != nil {
		return 0, nil, err
	}
	if (req.PEM == nil) == (req.AESKeyHex == nil) {
		return 0, nil, badRequest("give one of pem and aes_key_hex")
	}
	spec := admin.ImportSpec{Label: req.Label, ID: req.ID}
	if req.PEM != nil {
		spec.PEM = []byte(*req.PEM)
	} else {
		k, err := hex.DecodeString(*req.AESKeyHex)
		if err != nil {
			return 0, nil, badRequest("aes_key_hex: not hex")
		}
		defer clear(k)
		spec.AESKey = k
	}
	keys, err := admin.Import(c.ws.m, c.ws.h, spec)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"keys": keys}, nil
}

func (s *Server) deleteKey(c *call) (int, any, error) {
	obj, err := handle(c)
	if err != nil {
		return 0, nil, err
	}
	if err := admin.Delete(c.ws.m, c.ws.h, obj); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// shareKey is PUT (share) and DELETE (unshare) of
// /keys/{handle}/shares/{username}.
func (s *Server) shareKey(share bool) handler {
	return func(c *call) (int, any, error) {
		obj, err := handle(c)
		if err != nil {
			return 0, nil, err
		}
		k, err := admin.Share(c.ws.m, c.ws.h, obj, c.r.PathValue("username"), share)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, map[string]any{"key": k}, nil
	}
}

// trustedRequest is PUT /keys/{handle}/trusted.
type trustedRequest struct {
	Trusted *bool `json:"trusted"`
}

// setTrusted is `gohsm key set-trusted`: a crypto officer sets a secret or
// public key's CKA_TRUSTED (admin.SetTrusted: the token refuses anyone
// else). It answers 204: an officer may mark a key it cannot read (a
// crypto user's secret key, by handle), as the CLI's command does.
func (s *Server) setTrusted(c *call) (int, any, error) {
	obj, err := handle(c)
	if err != nil {
		return 0, nil, err
	}
	var req trustedRequest
	if err := decodeJSON(c.r, maxBody, &req); err != nil {
		return 0, nil, err
	}
	if req.Trusted == nil {
		return 0, nil, badRequest("trusted is required (true or false)")
	}
	if err := admin.SetTrusted(c.ws.m, c.ws.h, obj, *req.Trusted); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
