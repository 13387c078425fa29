// Package client is a small client for Vouch's HTTP API, used by the vouch
// CLI. Errors from the server are returned as *Problem.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client talks to one Vouch server.
type Client struct {
	Server string // base URL, e.g. http://localhost:8080
	Token  string
	HTTP   *http.Client
}

// New returns a client with a 30-second timeout.
func New(server, token string) *Client {
	return &Client{Server: strings.TrimRight(server, "/"), Token: token, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Problem is an RFC 9457 error returned by the server.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d)", p.Title, p.Status)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", e.Field, e.Detail)
	}
	return b.String()
}

// ErrUnreachable means the server could not be reached: nothing was
// sent, or no answer came.
var ErrUnreachable = errors.New("server unreachable")

// Do sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil). It returns the HTTP status.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) (int, error) {
	if body == nil {
		return c.send(ctx, method, path, "", nil, out)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	return c.send(ctx, method, path, "application/json", b, out)
}

// Upload POSTs content as it is, with its media type, and decodes the JSON
// answer into out (when not nil). It returns the HTTP status.
func (c *Client) Upload(ctx context.Context, path, mediaType string, content []byte, out any) (int, error) {
	return c.send(ctx, http.MethodPost, path, mediaType, content, out)
}

func (c *Client) send(ctx context.Context, method, path, contentType string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, rd)
	if err != nil {
		return 0, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnreachable, err) // err names the method and URL
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 400 {
		p := &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			_ = json.Unmarshal(data, p)
		} else if len(data) > 0 {
			p.Detail = strings.TrimSpace(string(data))
		}
		return resp.StatusCode, p
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// Stream sends a GET and copies the answer body to w as it arrives.
func (c *Client) Stream(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Server+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.doLong(req) // an export of a large journal takes as long as it takes
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// Lines posts a JSON body asking for an NDJSON answer and calls fn with
// each line as it arrives. There is no timeout but ctx: the answer takes
// as long as the work.
func (c *Client) Lines(ctx context.Context, path string, body any, fn func(line []byte) error) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Server+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.doLong(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if ferr := fn(line); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("POST %s: %w", c.Server+path, err)
		}
	}
}

// doLong sends req with the token and no timeout but its context's, for
// answers that take as long as the work. An error status is a *Problem.
func (c *Client) doLong(req *http.Request) (*http.Response, error) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := *c.HTTP
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err) // err names the method and URL
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, problem(resp)
	}
	return resp, nil
}

// problem reads an error answer as a *Problem.
func problem(resp *http.Response) *Problem {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	p := &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
	if json.Unmarshal(data, p) != nil {
		p.Detail = strings.TrimSpace(string(data))
	}
	return p
}
