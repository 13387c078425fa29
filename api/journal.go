package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/journal"
)

// entriesPage is a page of journal entries. Next is the "from" of the next
// page, absent on the last one.
type entriesPage struct {
	Entries []journal.Entry `json:"entries"`
	Next    *uint64         `json:"next,omitempty"`
}

func (s *Server) journalEntries(c *gin.Context) {
	var from uint64
	if v := c.Query("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			s.fail(c, &bodyError{kind: problemInvalidQuery, msg: fmt.Sprintf("query parameter \"from\" must be a journal index (0 to %d), got %q", math.MaxInt64, v)})
			return
		}
		from = n
	}
	limit, err := intParam(c, "limit", journal.DefaultLimit, 1, journal.MaxLimit)
	if err != nil {
		s.fail(c, err)
		return
	}
	q := journal.Query{From: from, Limit: limit, Kind: journal.Kind(c.Query("kind")), Environment: c.Query("environment")}
	entries, err := s.cfg.Journal.Entries(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	page := entriesPage{Entries: entries}
	if page.Entries == nil {
		page.Entries = []journal.Entry{}
	}
	if len(entries) == limit {
		next := entries[len(entries)-1].Index + 1
		page.Next = &next
	}
	c.JSON(http.StatusOK, page)
}
