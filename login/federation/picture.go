package federation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// MaxPictureBytes bounds a picture fetched from a provider (as the
// account's own limit does).
const MaxPictureBytes = 1 << 20

// errPrivateAddress refuses a picture URL that resolves to an address that
// is not public: a profile names the URL, so Torii must not be made to
// reach its own network (SSRF).
var errPrivateAddress = errors.New("federation: picture address is not public")

// publicOnly is a dialer's Control: it refuses loopback, private,
// link-local, multicast and unspecified addresses.
func publicOnly(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return errPrivateAddress
	}
	a := ap.Addr().Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return errPrivateAddress
	}
	return nil
}

// pictureClient is the default client for pictures: public addresses
// only, no proxy from the environment, the upstream timeout.
func pictureClient(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout, Control: publicOnly}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: timeout,
			ResponseHeaderTimeout: timeout, MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" || len(via) >= 3 {
				return errors.New("federation: picture redirect refused")
			}
			return nil
		},
	}
}

// Picture fetches the picture an identity's profile names: an https URL,
// at most MaxPictureBytes, from a public address (Config.PictureClient
// aside). The caller checks what it is (account.SetAvatar decodes and
// re-encodes it).
func (s *Service) Picture(ctx context.Context, pictureURL string) ([]byte, error) {
	u, err := url.Parse(pictureURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(pictureURL) > 2048 {
		return nil, errors.New("federation: picture URL is not an https URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.pictures.Do(req)
	if err != nil {
		return nil, fmt.Errorf("federation: picture: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("federation: picture: status %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxPictureBytes+1))
	if err != nil {
		return nil, fmt.Errorf("federation: picture: %w", err)
	}
	if len(data) > MaxPictureBytes {
		return nil, errors.New("federation: picture too large")
	}
	return data, nil
}
