// Package change reads change requests from the change management systems
// Vouch is configured with (change_systems; ServiceNow), with a read-only
// account of its own: a change request Vouch records is the system's word,
// not a pipeline's.
package change

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/evidence"
)

// SystemConfig is one entry of change_systems.
type SystemConfig struct {
	// Name identifies the system: its change requests are recorded with
	// key_id "change:<name>".
	Name string `json:"name"`
	// Type is servicenow.
	Type string `json:"type"`
	// URL is the instance, https://bank.service-now.com.
	URL string `json:"url"`
	// Username and PasswordFile are a read-only integration user's (Basic
	// authentication); TokenFile instead holds an OAuth access token.
	Username     string `json:"username,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
	TokenFile    string `json:"token_file,omitempty"`
}

// Change is a change request as Vouch read it: the facts decisions use and
// what a person reading the record wants besides. (When Vouch read it is
// the attestation's reported_at.)
type Change struct {
	evidence.ChangeFacts
	System           string `json:"system"`
	ID               string `json:"sys_id"`
	Type             string `json:"type,omitempty"` // normal, standard, emergency
	ShortDescription string `json:"short_description,omitempty"`
	URL              string `json:"url"`
}

// Report is the attestation of the change for digest, named name: type
// change-request, passed when the change is approved, verified with key_id
// "change:<system>".
func (c Change) Report(digest, name string) (evidence.AttestationReport, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return evidence.AttestationReport{}, err
	}
	passed := c.Approval == "approved"
	return evidence.AttestationReport{
		Digest: digest, Name: name, Type: evidence.TypeChangeRequest, Passed: &passed, URL: c.URL, Payload: payload,
		Verified: true, KeyID: "change:" + c.System,
	}, nil
}

// ErrNotFound is a change number the system does not know.
var ErrNotFound = errors.New("no such change request")

// ErrNoSystem is a lookup Vouch cannot make: no change system, or not the
// one named.
var ErrNoSystem = errors.New("no change system")

// NumberRE is what a change number looks like: CHG0030001.
var NumberRE = regexp.MustCompile(`^[A-Za-z]{2,8}[0-9]{4,12}$`)

// Systems are the change systems Vouch reads.
type Systems struct {
	list []*serviceNow
}

// NewSystems reads the credentials. Errors name the field.
func NewSystems(cfgs []SystemConfig) (*Systems, error) {
	s := &Systems{}
	for i, c := range cfgs {
		field := fmt.Sprintf("change_systems[%d]", i)
		switch {
		case c.Name == "" || strings.ContainsAny(c.Name, " \t:/"):
			return nil, fmt.Errorf("%s.name: %q: want a name without spaces, colons or slashes", field, c.Name)
		case c.Type != "servicenow":
			return nil, fmt.Errorf("%s.type: %q: want servicenow", field, c.Type)
		case (c.TokenFile == "") == (c.Username == ""):
			return nil, fmt.Errorf("%s: give username and password_file (a read-only integration user), or token_file (an OAuth access token)", field)
		case c.Username != "" && c.PasswordFile == "":
			return nil, fmt.Errorf("%s.password_file: is required with username", field)
		}
		for _, other := range s.list {
			if other.name == c.Name {
				return nil, fmt.Errorf("%s.name: %q is named twice", field, c.Name)
			}
		}
		base, err := instanceURL(c.URL)
		if err != nil {
			return nil, fmt.Errorf("%s.url: %w", field, err)
		}
		sn := &serviceNow{name: c.Name, base: base, http: &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirects}}
		// The secret is read for every request, so that a rotated Secret
		// (an OAuth access token expires within the hour) is used at once;
		// here, once, to fail at start when it cannot be read.
		file, key := c.PasswordFile, "password_file"
		if c.TokenFile != "" {
			file, key = c.TokenFile, "token_file"
		}
		if _, err := secret(file); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", field, key, err)
		}
		user := c.Username
		sn.auth = func(r *http.Request) error {
			v, err := secret(file)
			switch {
			case err != nil:
				return fmt.Errorf("%s: %w", key, err)
			case user == "":
				r.Header.Set("Authorization", "Bearer "+v)
			default:
				r.SetBasicAuth(user, v)
			}
			return nil
		}
		s.list = append(s.list, sn)
	}
	return s, nil
}

// Names are the configured systems' names.
func (s *Systems) Names() []string {
	var out []string
	for _, sn := range s.list {
		out = append(out, sn.name)
	}
	return out
}

// Read reads change number from the system named system ("" when only one
// is configured).
func (s *Systems) Read(ctx context.Context, system, number string) (Change, error) {
	if s == nil || len(s.list) == 0 {
		return Change{}, fmt.Errorf("%w: Vouch reads change requests from the change_systems in its configuration, and none is configured", ErrNoSystem)
	}
	if system == "" {
		if len(s.list) > 1 {
			return Change{}, fmt.Errorf("%w named: several are configured (%s), name one", ErrNoSystem, strings.Join(s.Names(), ", "))
		}
		return s.list[0].read(ctx, number)
	}
	for _, sn := range s.list {
		if sn.name == system {
			return sn.read(ctx, number)
		}
	}
	return Change{}, fmt.Errorf("%w %q: configured are %s", ErrNoSystem, system, strings.Join(s.Names(), ", "))
}

// instanceURL parses a system's URL: https, or http on loopback only (the
// credentials would cross the network in clear).
func instanceURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("the instance's URL is not a URL, e.g. https://bank.service-now.com")
	}
	if u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%q is not the instance's URL, e.g. https://bank.service-now.com (credentials go in username and password_file, or token_file)", u.Redacted())
	}
	ip := net.ParseIP(u.Hostname())
	loopback := u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
		return nil, fmt.Errorf("%q: use https (the credentials must not cross the network in clear)", raw)
	}
	return u, nil
}

// noRedirects keeps the credentials at the instance: a redirect is
// answered as it is, an error.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// secret reads a mounted Secret's file.
func secret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}
