// Benchmark workload for `cargo xtask bench report`: touches a wide slice
// of the standard library so that, built with -coverpkg=all, about 200
// instrumented packages write counters on every run.
package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"container/heap"
	"container/list"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/csv"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"hash/crc32"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math/big"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	texttemplate "text/template"
	"time"
	"unicode/utf8"
)

type item struct {
	Name  string   `json:"name" xml:"name"`
	Count int      `json:"count" xml:"count"`
	Tags  []string `json:"tags" xml:"tag"`
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func encodings(seed int) string {
	it := item{Name: "n" + strconv.Itoa(seed), Count: seed, Tags: []string{"a", "b"}}
	j, _ := json.Marshal(it)
	var back item
	_ = json.Unmarshal(j, &back)
	x, _ := xml.Marshal(it)
	var buf bytes.Buffer
	_ = gob.NewEncoder(&buf).Encode(it)
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{it.Name, strconv.Itoa(it.Count)})
	w.Flush()
	recs, _ := csv.NewReader(strings.NewReader("a,b\nc,d\n")).ReadAll()
	return base64.StdEncoding.EncodeToString(j) + hex.EncodeToString(x[:4]) + fmt.Sprint(len(recs))
}

func compression(data []byte) int {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	gz.Write(data)
	gz.Close()
	r, _ := gzip.NewReader(&b)
	out, _ := io.ReadAll(r)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(out)
	zw.Close()
	var t bytes.Buffer
	tw := tar.NewWriter(&t)
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: int64(len(data))})
	tw.Write(data)
	tw.Close()
	var zb bytes.Buffer
	zipw := zip.NewWriter(&zb)
	f, _ := zipw.Create("f.txt")
	f.Write(data)
	zipw.Close()
	return len(out) + z.Len() + t.Len() + zb.Len()
}

func cryptoWork(seed int) string {
	key := sha256.Sum256([]byte(strconv.Itoa(seed)))
	block, _ := aes.NewCipher(key[:])
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	sealed := gcm.Seal(nil, nonce, []byte("hello"), nil)
	m := hmac.New(sha512.New, key[:])
	m.Write(sealed)
	if seed%4 == 0 {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_ = k.PublicKey
	}
	return hex.EncodeToString(m.Sum(nil))[:8]
}

func goSource(seed int) string {
	src := fmt.Sprintf("package p\nfunc f(x int) int { if x > %d { return x }\n return 0 }\n", seed)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		return err.Error()
	}
	var b bytes.Buffer
	format.Node(&b, fset, f)
	return b.String()
}

func templates(seed int) string {
	var b bytes.Buffer
	t := template.Must(template.New("x").Parse(`<p>{{.Name}} {{range .Tags}}<i>{{.}}</i>{{end}}</p>`))
	t.Execute(&b, item{Name: "<b>" + strconv.Itoa(seed), Tags: []string{"x"}})
	tt := texttemplate.Must(texttemplate.New("y").Parse("{{.Count}} {{len .Tags}}\n"))
	tt.Execute(&b, item{Count: seed})
	return b.String()
}

func httpRoundTrip(seed int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"q":%q}`, r.URL.Query().Get("q"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	u.RawQuery = url.Values{"q": {strconv.Itoa(seed)}}.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var mb bytes.Buffer
	mw := multipart.NewWriter(&mb)
	mw.WriteField("k", string(body))
	mw.Close()
	return string(body)
}

func misc(seed int) string {
	h := &intHeap{5, 2, 8}
	heap.Init(h)
	heap.Push(h, seed%10)
	l := list.New()
	l.PushBack(heap.Pop(h))
	re := regexp.MustCompile(`(\w+)@(\w+)\.com`)
	m := re.FindStringSubmatch("mail gopher@golang.com now")
	s := []string{"b", "c", "a"}
	sort.Strings(s)
	n := new(big.Int).Exp(big.NewInt(int64(seed%7+2)), big.NewInt(100), nil)
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: uint8(seed), A: 255})
	var pb bytes.Buffer
	png.Encode(&pb, img)
	var tb bytes.Buffer
	tw := tabwriter.NewWriter(&tb, 0, 8, 1, ' ', 0)
	fmt.Fprintln(tw, "a\tb\tc")
	tw.Flush()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	logger.Info("run", "seed", seed)
	sc := bufio.NewScanner(strings.NewReader("x\ny\n"))
	lines := 0
	for sc.Scan() {
		lines++
	}
	return fmt.Sprint(m, s, n.BitLen(), pb.Len(), utf8.RuneCountInString("héllo"), crc32.ChecksumIEEE(pb.Bytes()), lines, time.Unix(int64(seed), 0).UTC().Format(time.RFC3339))
}

func main() {
	seed := 1
	if len(os.Args) > 1 {
		seed, _ = strconv.Atoi(os.Args[1])
	}
	var out []string
	out = append(out, encodings(seed), cryptoWork(seed), goSource(seed), templates(seed), misc(seed))
	out = append(out, strconv.Itoa(compression([]byte(strings.Repeat("coverage ", 50+seed%50)))))
	if seed%2 == 0 {
		out = append(out, httpRoundTrip(seed))
	}
	fmt.Fprintln(io.Discard, strings.Join(out, "\n"))
}
