package message

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// benchMessage builds a realistic message of about size octets: a
// multipart/mixed with a quoted-printable plain/HTML alternative and, for
// the rest, a base64 attachment.
func benchMessage(size int) []byte {
	var sb strings.Builder
	sb.WriteString("Return-Path: <alice@example.org>\r\n" +
		"Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n\tby mail.example.test with ESMTPS id 4F2a; Tue, 1 Oct 2024 17:30:01 +0000\r\n" +
		"From: =?utf-8?q?Alice_L=C3=B3pez?= <alice@example.org>\r\n" +
		"To: Bob <bob@example.test>, Carol <carol@example.test>\r\n" +
		"Cc: team: dave@example.test, erin@example.test;\r\n" +
		"Subject: =?utf-8?q?Quarterly_report_=E2=80=94_draft?=\r\n" +
		"Date: Tue, 1 Oct 2024 17:30:00 +0000\r\n" +
		"Message-ID: <report-42@example.org>\r\n" +
		"In-Reply-To: <report-41@example.test>\r\n" +
		"References: <report-40@example.org> <report-41@example.test>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"=_outer\"\r\n\r\n" +
		"--=_outer\r\nContent-Type: multipart/alternative; boundary=\"=_alt\"\r\n\r\n" +
		"--=_alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	para := "Hi Bob, here is the draft of the quarterly report. Numbers are up =E2=80=94 see the attachment.=\r\n Let me know.\r\n"
	text := strings.Repeat(para, 20)
	sb.WriteString(text)
	sb.WriteString("--=_alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body>")
	sb.WriteString(strings.ReplaceAll(text, "Hi Bob", "<p>Hi <b>Bob</b></p>"))
	sb.WriteString("</body></html>\r\n--=_alt--\r\n\r\n--=_outer\r\n" +
		"Content-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n")
	if rest := size - sb.Len() - 20; rest > 0 {
		data := make([]byte, rest*3/4)
		for i := range data {
			data[i] = byte(i * 7)
		}
		enc := base64.StdEncoding.EncodeToString(data)
		for len(enc) > 76 {
			sb.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		sb.WriteString(enc + "\r\n")
	}
	sb.WriteString("--=_outer--\r\n")
	return []byte(sb.String())
}

func BenchmarkParse(b *testing.B) {
	for _, size := range []int{10 << 10, 100 << 10} {
		raw := benchMessage(size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				Parse(raw)
			}
		})
	}
}

// TestBenchMessage keeps the benchmark honest: its input must parse as
// the structure it claims to be.
func TestBenchMessage(t *testing.T) {
	raw := benchMessage(100 << 10)
	p := Parse(raw)
	checkInvariants(t, raw, p.Body)
	if len(p.Body.Children) != 2 || p.Body.Children[1].Subtype != "pdf" || p.Preview == "" || len(p.Envelope.Cc) != 4 {
		t.Fatalf("bench message parsed as %+v", p.Body)
	}
}
