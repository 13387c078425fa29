package webhook

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Image is a parsed container image reference.
type Image struct {
	Ref    string // as written
	Name   string // normalised repository: docker.io/library/nginx
	Tag    string // "" when none
	Digest string // "" when not pinned, else "algorithm:hex"
}

var (
	// Grammar of github.com/distribution/reference, simplified.
	pathComponentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	domainRE        = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$|^\[[a-fA-F0-9:]+\](?::[0-9]+)?$`)
	tagRE           = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestRE        = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$`)
	sha256RE        = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// parsedImages memoises ParseImage: clusters run few distinct images, and
// the same ones are admitted again and again.
var parsedImages = struct {
	sync.Mutex
	m map[string]parsedImage
}{m: map[string]parsedImage{}}

type parsedImage struct {
	img Image
	err error
}

const maxParsedImages = 10000

// maxImageRef is the longest image reference accepted.
const maxImageRef = 4096

// parseImageCached is ParseImage with memoisation.
func parseImageCached(ref string) (Image, error) {
	parsedImages.Lock()
	p, ok := parsedImages.m[ref]
	parsedImages.Unlock()
	if ok {
		return p.img, p.err
	}
	img, err := ParseImage(ref)
	if len(ref) > maxImageRef {
		return img, err // not kept: the cache holds references of a sensible size only
	}
	parsedImages.Lock()
	if len(parsedImages.m) >= maxParsedImages {
		clear(parsedImages.m)
	}
	parsedImages.m[ref] = parsedImage{img, err}
	parsedImages.Unlock()
	return img, err
}

// ParseImage parses an image reference as container runtimes do and
// normalises its repository name the way Docker does: "nginx" is
// "docker.io/library/nginx", "team/app" is "docker.io/team/app".
func ParseImage(ref string) (Image, error) {
	img := Image{Ref: ref}
	if ref == "" {
		return img, fmt.Errorf("image reference is empty")
	}
	if len(ref) > maxImageRef {
		return img, fmt.Errorf("image reference is longer than %d characters", maxImageRef)
	}
	rest := ref
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		img.Digest = rest[i+1:]
		rest = rest[:i]
		if !digestRE.MatchString(img.Digest) {
			return img, fmt.Errorf("image %q: digest %q is not algorithm:hex", ref, img.Digest)
		}
		if strings.HasPrefix(img.Digest, "sha256:") && !sha256RE.MatchString(img.Digest) {
			return img, fmt.Errorf("image %q: a sha256 digest has 64 lower-case hex characters", ref)
		}
	}
	// A tag follows the last ':' after the last '/'.
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i:], "/") {
		img.Tag = rest[i+1:]
		rest = rest[:i]
		if !tagRE.MatchString(img.Tag) {
			return img, fmt.Errorf("image %q: tag %q is not valid", ref, img.Tag)
		}
	}
	domain, path := "docker.io", rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		first := rest[:i]
		if strings.ContainsAny(first, ".:[") || first == "localhost" || strings.ToLower(first) != first {
			domain, path = first, rest[i+1:]
			if !domainRE.MatchString(domain) {
				return img, fmt.Errorf("image %q: registry %q is not a host name", ref, domain)
			}
		}
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	for _, c := range strings.Split(path, "/") {
		if !pathComponentRE.MatchString(c) {
			return img, fmt.Errorf("image %q: repository %q must be lower-case letters, digits and separators", ref, path)
		}
	}
	img.Name = domain + "/" + path
	return img, nil
}

// normalizePattern normalises an allow-list pattern like an image name, so
// that "nginx" matches "docker.io/library/nginx". '*' matches any
// characters, '/' included.
func normalizePattern(p string) string {
	if !strings.Contains(p, "*") {
		if img, err := ParseImage(p); err == nil {
			return img.Name
		}
		return p
	}
	first, _, hasSlash := strings.Cut(p, "/")
	switch {
	case strings.HasPrefix(p, "*"), hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost"):
		return p
	case hasSlash:
		return "docker.io/" + p
	default:
		return "docker.io/library/" + p
	}
}

// globMatch matches s against a pattern in which '*' stands for any run
// of characters.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
