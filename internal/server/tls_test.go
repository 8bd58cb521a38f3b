/*
Copyright 2026 The token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// selfSigned returns a PEM certificate and key for 127.0.0.1 with the given serial number.
func selfSigned(serial int64) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "token-operator test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	cert, err = x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	keyDER, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), cert
}

var _ = Describe("TLS", func() {
	It("serves HTTPS and picks up a renewed certificate without a restart", func() {
		dir := GinkgoT().TempDir()
		certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		c1, k1, first := selfSigned(1)
		c2, k2, second := selfSigned(2)
		Expect(os.WriteFile(certFile, c1, 0o600)).To(Succeed())
		Expect(os.WriteFile(keyFile, k1, 0o600)).To(Succeed())

		stop, srv := startOperator(false, func(s *Server) { s.TLSCertFile, s.TLSKeyFile = certFile, keyFile })
		defer stop()
		roots := x509.NewCertPool()
		roots.AddCert(first)
		roots.AddCert(second)
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, DisableKeepAlives: true}}
		served := func() (int64, error) {
			resp, err := client.Get("https://" + srv.Listener.Addr().String() + "/openapi.json")
			if err != nil {
				return 0, err
			}
			_ = resp.Body.Close()
			return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
		}
		Expect(served()).To(Equal(int64(1)))

		By("renewing the certificate in place, as the kubelet updates a mounted Secret")
		Expect(os.WriteFile(keyFile, k2, 0o600)).To(Succeed())
		Expect(os.WriteFile(certFile, c2, 0o600)).To(Succeed())
		Eventually(served).WithTimeout(20 * time.Second).WithPolling(200 * time.Millisecond).Should(Equal(int64(2)))

		By("refusing plain HTTP on the TLS port")
		resp, err := httpClient.Get("http://" + srv.Listener.Addr().String() + "/openapi.json")
		if err == nil {
			_ = resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
		}
	})
})
