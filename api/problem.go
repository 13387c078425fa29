package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type     string                `json:"type"`
	Title    string                `json:"title"`
	Status   int                   `json:"status"`
	Detail   string                `json:"detail,omitempty"`
	Instance string                `json:"instance,omitempty"`
	Errors   []evidence.FieldError `json:"errors,omitempty"`
}

// ProblemBase prefixes problem type URIs; docs/api.md lists them.
const ProblemBase = "https://vouch.dev/problems/"

// problemKind is one row of the error table.
type problemKind struct {
	slug   string
	title  string
	status int
}

var (
	problemInvalidBody  = problemKind{"malformed-request", "The request body is malformed", http.StatusBadRequest}
	problemInvalidQuery = problemKind{"invalid-parameter", "A query or path parameter is invalid", http.StatusBadRequest}
	problemValidation   = problemKind{"validation", "The request has invalid fields", http.StatusUnprocessableEntity}
	problemUnauthorized = problemKind{"unauthorized", "A valid bearer token is required", http.StatusUnauthorized}
	problemForbidden    = problemKind{"forbidden", "The token lacks the scope this endpoint requires", http.StatusForbidden}
	problemNotFound     = problemKind{"not-found", "Not found", http.StatusNotFound}
	problemMethod       = problemKind{"method-not-allowed", "Method not allowed", http.StatusMethodNotAllowed}
	problemConflict     = problemKind{"conflict", "The request conflicts with what is recorded", http.StatusConflict}
	problemTooLarge     = problemKind{"too-large", "The request body is too large", http.StatusRequestEntityTooLarge}
	problemMediaType    = problemKind{"unsupported-media-type", "Send the body as application/json", http.StatusUnsupportedMediaType}
	problemRefused      = problemKind{"refused", "The store refused this content; it was not recorded, and sending it again will not help", http.StatusUnprocessableEntity}
	problemUnavailable  = problemKind{"unavailable", "Vouch cannot complete the request now; retry later", http.StatusServiceUnavailable}
	problemForge        = problemKind{"forge-failed", "The forge did not answer Vouch's question; nothing was recorded", http.StatusBadGateway}
	problemChangeSystem = problemKind{"change-system-failed", "The change system did not answer Vouch's question; nothing was recorded", http.StatusBadGateway}
	problemNotApproved  = problemKind{"deployment-not-approved", "The forge records no approval of the job's deployment; nothing was recorded", http.StatusForbidden}
	problemRateLimited  = problemKind{"rate-limited", "Too many requests with this token; retry after the time given", http.StatusTooManyRequests}
	problemBusy         = problemKind{"busy", "Vouch is busy with the same kind of work; retry when it is done", http.StatusTooManyRequests}
	problemInternal     = problemKind{"internal", "Internal error", http.StatusInternalServerError}
)

// classify maps an error to its problem: the one table from domain errors
// to HTTP statuses.
func classify(err error) (problemKind, []evidence.FieldError) {
	var verr *evidence.ValidationError
	var terr *auth.InvalidError
	var berr *bodyError
	switch {
	case errors.As(err, &berr):
		return berr.kind, berr.fields
	case errors.As(err, &verr):
		return problemValidation, verr.Fields
	case errors.As(err, &terr):
		return problemValidation, nil
	case errors.Is(err, auth.ErrUnauthenticated):
		return problemUnauthorized, nil
	case errors.Is(err, errForbidden):
		return problemForbidden, nil
	case errors.Is(err, errRateLimited):
		return problemRateLimited, nil
	case errors.Is(err, evidence.ErrNotFound), errors.Is(err, auth.ErrNotFound), errors.Is(err, errNotFound), errors.Is(err, journal.ErrNotFound):
		return problemNotFound, nil
	case errors.Is(err, evidence.ErrConflict), errors.Is(err, auth.ErrNameTaken):
		return problemConflict, nil
	case errors.Is(err, journal.ErrRefused):
		return problemRefused, nil
	case errors.Is(err, evidence.ErrUnavailable), errors.Is(err, auth.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return problemUnavailable, nil
	}
	return problemInternal, nil
}

var (
	errForbidden   = errors.New("forbidden")
	errRateLimited = errors.New("rate limited")
)

// fail writes err as problem+json. Internal errors are logged, and their
// text is not shown to the client.
func (s *Server) fail(c *gin.Context, err error) {
	kind, fields := classify(err)
	detail := err.Error()
	switch kind {
	case problemInternal:
		s.log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(), "error", err)
		detail = "Vouch could not complete the request; the server log has the details."
	case problemUnavailable:
		s.log.Warn("request not completed", "method", c.Request.Method, "path", c.FullPath(), "error", err)
		c.Header("Retry-After", "1")
		// The cause names database hosts and drivers: the log has it.
		detail = "A store Vouch depends on did not answer, so nothing was recorded; retry (Retry-After). The server log has the cause."
	case problemBusy:
		c.Header("Retry-After", "10")
	case problemUnauthorized:
		c.Header("WWW-Authenticate", `Bearer realm="vouch"`)
	}
	writeProblem(c, Problem{
		Type: ProblemBase + kind.slug, Title: kind.title, Status: kind.status,
		Detail: detail, Instance: c.Request.URL.Path, Errors: fields,
	})
}

func writeProblem(c *gin.Context, p Problem) {
	c.Header("Content-Type", "application/problem+json")
	c.Status(p.Status)
	enc := json.NewEncoder(c.Writer)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
	c.Abort()
}

// bodyError is a request body that could not be read or decoded.
type bodyError struct {
	kind   problemKind
	msg    string
	fields []evidence.FieldError
}

func (e *bodyError) Error() string { return e.msg }

// decodeJSON decodes a JSON object body into v: application/json only,
// at most maxBytes, no unknown fields, nothing after the object.
func decodeJSON(c *gin.Context, maxBytes int64, v any) error {
	if ct := c.ContentType(); ct != "application/json" {
		return &bodyError{kind: problemMediaType, msg: fmt.Sprintf("content type %q is not supported: send application/json", c.GetHeader("Content-Type"))}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &bodyError{kind: problemTooLarge, msg: fmt.Sprintf("request body is larger than %d bytes", maxBytes)}
		}
		return &bodyError{kind: problemInvalidBody, msg: "read request body: " + err.Error()}
	}
	if err := checkText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, body)
	}
	if dec.More() {
		return &bodyError{kind: problemInvalidBody, msg: "request body has data after the JSON object"}
	}
	return nil
}

// checkText refuses what encoding/json would accept but not keep as sent:
// invalid UTF-8, which it replaces with U+FFFD, and NUL characters, which
// no text column (PostgreSQL's, notably) can store.
func checkText(body []byte) error {
	if !utf8.Valid(body) {
		return &bodyError{kind: problemInvalidBody, msg: "request body is not valid UTF-8"}
	}
	inString := false
	for i := 0; i < len(body); i++ {
		switch {
		case body[i] == '"':
			inString = !inString
		case inString && body[i] == '\\':
			if bytes.HasPrefix(body[i+1:], []byte("u0000")) {
				return &bodyError{kind: problemInvalidBody, msg: fmt.Sprintf("request body has a NUL character (\\u0000) in a string at byte %d: text may not contain it", i)}
			}
			i++ // the escaped character
		}
	}
	return nil
}

// jsonError turns an encoding/json error on body into a message naming
// the field.
func jsonError(err error, body []byte) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tim *time.ParseError
	switch {
	case errors.As(err, &tim):
		// encoding/json does not say which field a time came from: the
		// top-level member holding that string does.
		var members map[string]json.RawMessage
		json.Unmarshal(body, &members)
		want, _ := json.Marshal(tim.Value)
		for name, raw := range members {
			if bytes.Equal(bytes.TrimSpace(raw), want) {
				detail := fmt.Sprintf("must be an RFC 3339 time such as 2026-12-01T17:00:00Z, not %s", want)
				return &bodyError{kind: problemInvalidBody, msg: fmt.Sprintf("field %q %s", name, detail),
					fields: []evidence.FieldError{{Field: name, Detail: detail}}}
			}
		}
		return &bodyError{kind: problemInvalidBody, msg: fmt.Sprintf("a time must be in RFC 3339 form such as 2026-12-01T17:00:00Z, not %s", want)}
	case errors.Is(err, io.EOF):
		return &bodyError{kind: problemInvalidBody, msg: "request body is empty: send a JSON object"}
	case errors.As(err, &syn):
		return &bodyError{kind: problemInvalidBody, msg: fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn)}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &bodyError{kind: problemInvalidBody, msg: fmt.Sprintf("request body must be a JSON object, not %s", typ.Value)}
		}
		return &bodyError{kind: problemInvalidBody, msg: fmt.Sprintf("field %q must be %s, not %s", field, jsonType(typ.Type.String()), typ.Value),
			fields: []evidence.FieldError{{Field: field, Detail: fmt.Sprintf("must be %s, not %s", jsonType(typ.Type.String()), typ.Value)}}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &bodyError{kind: problemInvalidBody, msg: fmt.Sprintf("field %q is not known to this endpoint", name),
			fields: []evidence.FieldError{{Field: name, Detail: "is not a known field"}}}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &bodyError{kind: problemInvalidBody, msg: "malformed JSON: unexpected end of body"}
	}
	return &bodyError{kind: problemInvalidBody, msg: "malformed JSON: " + err.Error()}
}

func jsonType(goType string) string {
	switch {
	case goType == "string", goType == "time.Time":
		return "a string"
	case goType == "bool" || goType == "*bool":
		return "true or false"
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}
