package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	gojson "github.com/goccy/go-json"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ServeHTTP reads an AdmissionReview, decides it and writes the answer. It
// always writes a valid AdmissionReview: transport errors get an HTTP error
// status and a review whose response denies with the reason.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeReview(w, http.StatusMethodNotAllowed, errored("", http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed: send the AdmissionReview with POST", r.Method)))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeReview(w, http.StatusUnsupportedMediaType, errored("", http.StatusUnsupportedMediaType,
			fmt.Errorf("content type %q is not supported: send application/json", r.Header.Get("Content-Type"))))
		return
	}
	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		h.cfg.Logger.Warn("webhook busy: review refused", "in_flight", h.cfg.MaxInFlight, "remote", r.RemoteAddr)
		if h.cfg.Observer != nil {
			h.cfg.Observer.ObserveThrottled()
		}
		w.Header().Set("Retry-After", "1")
		writeReview(w, http.StatusTooManyRequests, errored("", http.StatusTooManyRequests,
			fmt.Errorf("vouch is deciding %d reviews already; retry", h.cfg.MaxInFlight)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeReview(w, http.StatusRequestEntityTooLarge, errored("", http.StatusRequestEntityTooLarge,
				fmt.Errorf("request body is larger than %d bytes", h.cfg.MaxBodyBytes)))
			return
		}
		writeReview(w, http.StatusBadRequest, errored("", http.StatusBadRequest, fmt.Errorf("read request body: %w", err)))
		return
	}
	if req, objs, ok := decodeOnePass(body); ok {
		writeReview(w, http.StatusOK, h.handle(r.Context(), req, objs))
		return
	}
	review, err := decodeReview(body)
	if err != nil {
		uid := types.UID("")
		if review.Request != nil {
			uid = review.Request.UID
		}
		writeReview(w, http.StatusBadRequest, errored(uid, http.StatusBadRequest, err))
		return
	}
	writeReview(w, http.StatusOK, h.Handle(r.Context(), review.Request))
}

// wireReview is an AdmissionReview whose object and old object are decoded
// into the fields Vouch reads along with the rest of the review, instead of
// being kept raw (RawExtension) and decoded again. It is decoded with
// goccy/go-json, ~7 times faster than encoding/json for a review
// (BenchmarkDecodeReview); FuzzDecodeOnePass holds the two to the same
// result.
type wireReview struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Request    *wireRequest `json:"request"`
}

type wireRequest struct {
	admissionv1.AdmissionRequest
	Object    *object `json:"object"`    // shadows AdmissionRequest.Object
	OldObject *object `json:"oldObject"` // shadows AdmissionRequest.OldObject
}

// decodeOnePass decodes a well-formed review in one pass. It reports false
// for anything else (also for an object that does not decode), which
// decodeReview and Handle then treat as before, with the same errors.
func decodeOnePass(body []byte) (req *admissionv1.AdmissionRequest, objs *decoded, ok bool) {
	defer func() {
		if recover() != nil { // a decoder bug must not cost the answer: take the old path
			req, objs, ok = nil, nil, false
		}
	}()
	var review wireReview
	if gojson.Unmarshal(body, &review) != nil || review.APIVersion != admissionv1.SchemeGroupVersion.String() ||
		review.Kind != "AdmissionReview" || review.Request == nil || review.Request.UID == "" || review.Request.Object == nil {
		return nil, nil, false
	}
	req = &review.Request.AdmissionRequest
	if req.SubResource == "ephemeralcontainers" && review.Request.OldObject == nil {
		return nil, nil, false
	}
	return req, &decoded{object: review.Request.Object, old: review.Request.OldObject}, true
}

func decodeReview(body []byte) (admissionv1.AdmissionReview, error) {
	var review admissionv1.AdmissionReview
	if len(body) == 0 {
		return review, errors.New("request body is empty: send an AdmissionReview")
	}
	if err := json.Unmarshal(body, &review); err != nil {
		return review, fmt.Errorf("request body is not an AdmissionReview: %w", err)
	}
	switch {
	case review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview":
		return review, fmt.Errorf("want apiVersion %s, kind AdmissionReview; got apiVersion %q, kind %q",
			admissionv1.SchemeGroupVersion, review.APIVersion, review.Kind)
	case review.Request == nil:
		return review, errors.New("AdmissionReview has no request")
	case review.Request.UID == "":
		return review, errors.New("AdmissionReview request has no uid")
	}
	return review, nil
}

func writeReview(w http.ResponseWriter, status int, resp *admissionv1.AdmissionResponse) {
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(review) // the client is gone if this fails
}

// allowed admits, with optional warnings.
func allowed(uid types.UID, warnings []string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{UID: uid, Allowed: true, Warnings: warnings}
}

// denied refuses with the policy's messages, one per line.
func denied(uid types.UID, messages, warnings []string) *admissionv1.AdmissionResponse {
	msg := ""
	for i, m := range messages {
		if i > 0 {
			msg += "\n"
		}
		msg += m
	}
	return &admissionv1.AdmissionResponse{
		UID: uid, Allowed: false, Warnings: warnings,
		Result: &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg},
	}
}

// errored refuses because Vouch could not decide (fail closed).
func errored(uid types.UID, code int32, err error) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		UID: uid, Allowed: false,
		Result: &metav1.Status{Status: metav1.StatusFailure, Code: code, Message: err.Error()},
	}
}
