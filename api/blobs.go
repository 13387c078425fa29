package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/evidence"
)

// BlobAnswer is the answer to POST /blobs.
type BlobAnswer struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

// postBlob stores the raw request body as a blob under the digest computed
// here: 201 when new, 200 when the same content was stored before.
func (s *Server) postBlob(c *gin.Context) {
	max := s.cfg.MaxBlobBytes
	tooLarge := &bodyError{kind: problemTooLarge, msg: fmt.Sprintf("the blob is larger than this server's limit of %d bytes (max_blob_size)", max)}
	if c.Request.ContentLength > max {
		s.fail(c, tooLarge)
		return
	}
	mediaType, err := blobMediaType(c.GetHeader("Content-Type"))
	if err != nil {
		s.fail(c, err)
		return
	}
	content, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(c, tooLarge)
			return
		}
		s.fail(c, &bodyError{kind: problemInvalidBody, msg: "read request body: " + err.Error()})
		return
	}
	if len(content) == 0 {
		s.fail(c, &bodyError{kind: problemInvalidBody, msg: "request body is empty: send the document's bytes"})
		return
	}
	ctx := c.Request.Context()
	b := evidence.NewBlob(content, mediaType, caller(c), time.Now())
	created, err := s.cfg.Blobs.PutBlob(ctx, b)
	if err == nil && !created {
		b, err = s.cfg.Blobs.BlobInfo(ctx, b.Digest) // the first upload's media type stands
	}
	if err != nil {
		s.fail(c, fmt.Errorf("%w: %w", evidence.ErrUnavailable, err))
		return
	}
	c.Header("Location", "/api/v1/blobs/"+b.Digest)
	c.JSON(createdStatus(created), BlobAnswer{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType})
}

// blobMediaType checks a Content-Type header and returns it normalized,
// or the default for none.
func blobMediaType(header string) (string, error) {
	if strings.TrimSpace(header) == "" {
		return evidence.DefaultBlobMediaType, nil
	}
	mt, params, err := mime.ParseMediaType(header)
	if err == nil {
		header = mime.FormatMediaType(mt, params)
	}
	if err != nil || header == "" || len(header) > 255 {
		return "", &bodyError{kind: problemInvalidBody, msg: fmt.Sprintf("Content-Type %q is not a media type of at most 255 bytes (such as application/xml)", truncate(header, 80))}
	}
	return header, nil
}

// getBlob serves a blob's bytes as an attachment: never rendered by a
// browser, whatever was uploaded.
func (s *Server) getBlob(c *gin.Context) {
	d, ok := evidence.ParseDigest(c.Param("digest"))
	if !ok {
		s.fail(c, &bodyError{kind: problemInvalidQuery, msg: fmt.Sprintf("blob digest %q must be \"sha256:\" and 64 hex characters, or the 64 hex characters alone", truncate(c.Param("digest"), 80))})
		return
	}
	etag := `"` + d + `"`
	h := c.Writer.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	if c.GetHeader("If-None-Match") == etag {
		c.Status(http.StatusNotModified)
		return
	}
	b, err := s.cfg.Blobs.Blob(c.Request.Context(), d)
	if err != nil {
		if !errors.Is(err, evidence.ErrNotFound) {
			err = fmt.Errorf("%w: %w", evidence.ErrUnavailable, err)
		}
		h.Del("ETag")
		h.Del("Cache-Control")
		s.fail(c, err)
		return
	}
	h.Set("Content-Type", b.MediaType)
	h.Set("Content-Length", strconv.FormatInt(b.Size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", `attachment; filename="`+strings.Replace(d, ":", "-", 1)+`"`)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	c.Status(http.StatusOK)
	c.Writer.Write(b.Content)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
