/*
Copyright 2026 The token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxBodyBytes is the largest request body accepted.
const MaxBodyBytes = 4 << 10

// requestError is a client mistake, answered with its status code and detail.
type requestError struct {
	code   int
	detail string
}

func (e *requestError) Error() string { return e.detail }

func badRequest(format string, args ...any) *requestError {
	return &requestError{code: http.StatusBadRequest, detail: fmt.Sprintf(format, args...)}
}

// writeRequestError answers err: its own code for a requestError, else 400.
func writeRequestError(w http.ResponseWriter, err error) {
	if re, ok := errors.AsType[*requestError](err); ok {
		writeError(w, re.code, re.detail)
		return
	}
	writeError(w, http.StatusBadRequest, err.Error())
}

// readJSON reads a request body of at most MaxBodyBytes holding one JSON object into dst,
// refusing unknown fields; empty reports a body of nothing but white space (dst untouched).
// Errors are requestErrors (400, or 413 for a body too large); example shows the shape wanted.
func readJSON(body io.Reader, dst any, example string) (empty bool, err error) {
	raw, err := readBody(body)
	if err != nil {
		return false, err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return true, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return false, badRequest("body: want a JSON object such as %s: %v", example, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false, badRequest("body: want a single JSON object")
	}
	return false, nil
}

// readBody reads a request body of at most MaxBodyBytes; errors are requestErrors (413 for a
// body too large, else 400).
func readBody(body io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes+1))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge()
		}
		return nil, badRequest("body: %v", err)
	}
	if len(raw) > MaxBodyBytes {
		return nil, tooLarge()
	}
	return raw, nil
}

func tooLarge() *requestError {
	return &requestError{code: http.StatusRequestEntityTooLarge, detail: fmt.Sprintf("body: larger than %d bytes", MaxBodyBytes)}
}

// tokenBody is the body form of the routes that take a token, which keeps the token out of
// URLs and so out of proxy, ingress and browser-history logs.
type tokenBody struct {
	Token   *string `json:"token"`
	Purpose *string `json:"purpose"`
}

// presentation is a token as a request presents it, and the purpose it asks for ("" for none).
type presentation struct {
	Token, Purpose string
}

// ParseTokenBody reads {"token":"<id>:<secret>"} and an optional "purpose". Any string is a
// token or a purpose here (one that does not parse or match is simply not valid); anything
// else is a requestError.
func ParseTokenBody(body io.Reader) (presentation, error) {
	var b tokenBody
	empty, err := readJSON(body, &b, `{"token":"<id>:<secret>"}`)
	switch {
	case err != nil:
		return presentation{}, err
	case empty || b.Token == nil:
		return presentation{}, badRequest(`token: required, as {"token":"<id>:<secret>"}`)
	}
	p := presentation{Token: *b.Token}
	if b.Purpose != nil {
		p.Purpose = *b.Purpose
	}
	return p, nil
}

// tokenHandler answers a request about the token it presents.
type tokenHandler func(w http.ResponseWriter, r *http.Request, p presentation)

// fromPath answers with the token in the path's {token} segment, the original service's form,
// and the purpose in the ?purpose= query parameter.
func fromPath(h tokenHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h(w, r, presentation{Token: r.PathValue("token"), Purpose: r.URL.Query().Get("purpose")})
	}
}

// fromBody answers with the token in the JSON body; a {token} path segment is ignored.
func fromBody(h tokenHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := ParseTokenBody(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			writeRequestError(w, err)
			return
		}
		h(w, r, p)
	}
}
