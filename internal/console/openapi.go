package console

import (
	_ "embed"
	"net/http"
)

// openapiYAML is the API's description (OpenAPI 3.0.3), served as is;
// the API tests check the server against it.
//
//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI is the API's OpenAPI document.
func OpenAPI() []byte { return openapiYAML }

func (s *Server) openAPI(c *call) (int, any, error) {
	return http.StatusOK, rawBody{contentType: "application/yaml", data: openapiYAML}, nil
}
