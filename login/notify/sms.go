package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/torii-idp/torii/storage"
)

// newSMSSender returns the sender for an http(s) JSON endpoint or Twilio.
func newSMSSender(cfg Config) (sender, error) {
	u, err := url.Parse(cfg.SMSURL)
	if err != nil {
		return nil, errors.New("notify: the SMS URL is not a URL")
	}
	client := &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: cfg.Timeout,
	}}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, errors.New("notify: the SMS URL needs a host")
		}
		return &jsonSMS{url: u.String(), client: client}, nil
	case "twilio":
		sid := u.User.Username()
		token, ok := u.User.Password()
		from, _ := url.PathUnescape(u.Host)
		if sid == "" || !ok || token == "" || !strings.HasPrefix(from, "+") {
			return nil, errors.New("notify: a Twilio SMS URL must look like twilio://ACCOUNT_SID:AUTH_TOKEN@+15551234567")
		}
		base := strings.TrimSuffix(cfg.TwilioBaseURL, "/")
		return &twilioSMS{endpoint: base + "/2010-04-01/Accounts/" + url.PathEscape(sid) + "/Messages.json",
			sid: sid, token: token, from: from, client: client}, nil
	default:
		return nil, errors.New("notify: the SMS URL must be http(s):// or twilio://")
	}
}

// jsonSMS posts {"to": "+...", "body": "..."} to an HTTP endpoint.
type jsonSMS struct {
	url    string
	client *http.Client
}

func (j *jsonSMS) send(ctx context.Context, m *storage.OutboxMessage) error {
	body, _ := json.Marshal(map[string]string{"to": m.Recipient, "body": m.BodyText})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return do(j.client, req)
}

// twilioSMS uses Twilio's Messages API.
type twilioSMS struct {
	endpoint, sid, token, from string
	client                     *http.Client
}

func (t *twilioSMS) send(ctx context.Context, m *storage.OutboxMessage) error {
	form := url.Values{"To": {m.Recipient}, "From": {t.from}, "Body": {m.BodyText}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(t.sid, t.token)
	return do(t.client, req)
}

// do sends req; any answer but 2xx is a failure to retry.
func do(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("sms gateway %s: %w", req.URL.Host, ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("sms gateway %s answered %s", req.URL.Host, resp.Status)
	}
	return nil
}
