// One direction of an LSTM layer (zero initial state) for MindSpore's CPU Custom "aot" operator.
//
// Why it exists: MindSpore's fused CPU LSTM kernels keep private re-ordered copies of the weights in every
// forward kernel and four (weights, their gradients) in every backward kernel, per call site and per compiled
// graph (~1.5 GB for DeepSpeech2's 5 x 2 directions), and the training workspace holds ~52 floats x hidden per
// frame and clip. This kernel keeps what the backward pass needs and nothing else: the activated gates
// (4 x hidden per frame and clip). The backward pass rebuilds the cell states and outputs from them (an
// element-wise scan: c_t = f c_{t-1} + i g, h_t = o tanh(c_t)), so neither is held between the passes.
//
// Gate order i, f, g, o (PyTorch's, and the layout of MindSpore's weight_ih_l0 / weight_hh_l0):
//   z_t = W_ih x_t + W_hh h_{t-1} + b,  i, f, o = sigmoid(z_i, z_f, z_o),  g = tanh(z_g)
//   c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
// The products over all frames at once (input projections, weight gradients, input gradients): oneDNN's
// dnnl_sgemm (the library MindSpore ships), single-threaded on slices from an OpenMP team. The recurrent
// products of each step (a few clips x hidden times hidden x 4 hidden) read every weight once per step: they
// run on a panel-packed copy of W_hh made for the call (Panels; transient, freed on return) with the clips'
// values broadcast (GCC vector extensions: AVX-512 or AVX2, whatever -march=native gives). Each thread owns a
// slice of hidden units through the whole time loop.
//
// Entry points (MindSpore aot signature: inputs, then outputs, all float32, row-major):
//   LstmForward:  x (T,N,I), w_ih (4H,I), w_hh (4H,H), b (4H)  ->  y (T,N,H), gates (T,N,4H)
//   LstmBackward: x, w_ih, w_hh, gates, dy (T,N,H)             ->  dx (T,N,I), dw_ih (4H,I), dw_hh (4H,H), db (4H)
#include <omp.h>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

extern "C" int dnnl_sgemm(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                          int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

namespace {

inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

#ifdef __AVX512F__
constexpr int kLanes = 16;      // floats per vector register
constexpr int64_t kPanel = 64;  // output columns per panel: 4 clips x 4 vectors = 16 of 32 registers
#else
// AVX2 (and narrower vectors, which the compiler splits). A vector wider than the registers (the first version
// used 16 floats everywhere) made GCC shuffle every value through the stack: 27 GFLOP/s against 230-430.
constexpr int kLanes = 8;
constexpr int64_t kPanel = 16;  // 4 clips x 2 vectors = 8 of 16 registers
#endif
constexpr int kVectors = kPanel / kLanes;

typedef float vec __attribute__((vector_size(4 * kLanes)));

inline vec load_vec(const float *p) {
  vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store_vec(float *p, vec v) { std::memcpy(p, &v, sizeof(v)); }

// n floats, not zeroed: for arrays every element of which is written before it is read (zeroing the backward's
// 50-80 MB of them cost a pass over memory per call).
inline std::unique_ptr<float[]> uninitialised(int64_t n) { return std::unique_ptr<float[]>(new float[n]); }

// A weight matrix packed for the recurrent products: panel b holds columns [b * kPanel, (b + 1) * kPanel) of the
// product's K x C right-hand side, K rows of kPanel contiguous floats, so a step streams each panel once, in
// order, and broadcasts the (few) clips' state values instead of loading them per product. Built once per call
// (a transient copy the size of the weights); columns past the last whole panel are not packed.
struct Panels {
  const int64_t K, C;
  const std::unique_ptr<float[]> data;

  // rhs(k, c) = w[c * ldw + k] when `transposed` (the forward's W_hh^T), w[k * ldw + c] otherwise.
  Panels(const float *w, int64_t k_rows, int64_t cols, int64_t ldw, bool transposed)
      : K(k_rows), C(cols / kPanel * kPanel), data(uninitialised(K * C)) {
    constexpr int64_t kBlock = 16;  // transposing: 16 rows' worth of a panel (4 KB) at a time, read along w's rows
#pragma omp parallel for
    for (int64_t b = 0; b < C / kPanel; ++b) {
      float *panel = data.get() + b * K * kPanel;
      if (transposed) {
        for (int64_t k0 = 0; k0 < K; k0 += kBlock)
          for (int64_t c = 0; c < kPanel; ++c) {
            const float *row = w + (b * kPanel + c) * ldw;
            for (int64_t k = k0; k < std::min(K, k0 + kBlock); ++k) panel[k * kPanel + c] = row[k];
          }
      } else {
        for (int64_t k = 0; k < K; ++k)
          std::memcpy(panel + k * kPanel, w + k * ldw + b * kPanel, kPanel * sizeof(float));
      }
    }
  }
};

// Panel rows ahead of the current one to prefetch: W_hh (16 MB) streams from L3 each step, and the hardware
// prefetcher alone left the loop waiting (bench/results/train_memory_attempts.md).
constexpr int64_t kPrefetchRows = 4;

// R clips' (R <= 4) product with one panel: acc[q] = sum_k h_q[k] panel(k, :), weights held in registers.
template <int R>
inline void panel_block(const float *panel, int64_t K, const float *h, float *z, int64_t ldz, bool accumulate) {
  if (accumulate)  // the rows added to were written long ago (the input projections): fetch them meanwhile
    for (int q = 0; q < R; ++q)
      for (int v = 0; v < kVectors; ++v) __builtin_prefetch(z + q * ldz + kLanes * v, 1, 3);
  vec acc[R][kVectors] = {};
  for (int64_t k = 0; k < K; ++k) {
    const float *w = panel + k * kPanel;
    for (int v = 0; v < kVectors; ++v) __builtin_prefetch(w + kPrefetchRows * kPanel + kLanes * v, 0, 3);
    vec wv[kVectors];
    for (int v = 0; v < kVectors; ++v) {
      wv[v] = load_vec(w + kLanes * v);
#ifdef __AVX__
      // Keep each weight vector in a register: left to itself GCC folds the load into every one of the R
      // multiply-adds that use it, R loads per vector, and the loop ran at half the multiply-add rate.
      asm volatile("" : "+v"(wv[v]));
#endif
    }
    for (int q = 0; q < R; ++q) {
      const float x = h[q * K + k];
      for (int v = 0; v < kVectors; ++v) acc[q][v] += x * wv[v];
    }
  }
  for (int q = 0; q < R; ++q)
    for (int v = 0; v < kVectors; ++v) {
      float *out = z + q * ldz + kLanes * v;
      store_vec(out, accumulate ? load_vec(out) + acc[q][v] : acc[q][v]);
    }
}

// z[n * ldz + c] (+)= sum_k h[n * K + k] rhs(k, c) for columns c in [c0, c1) (whole panels) and clips n < N.
void panel_product(const Panels &P, int64_t c0, int64_t c1, const float *h, int64_t N, float *z, int64_t ldz,
                   bool accumulate) {
  const int64_t K = P.K;
  for (int64_t c = c0; c < c1; c += kPanel) {
    const float *panel = P.data.get() + (c / kPanel) * K * kPanel;
    int64_t n = 0;
    for (; n + 4 <= N; n += 4) panel_block<4>(panel, K, h + n * K, z + n * ldz + c, ldz, accumulate);
    switch (N - n) {  // the last 1-3 clips
      case 3: panel_block<3>(panel, K, h + n * K, z + n * ldz + c, ldz, accumulate); break;
      case 2: panel_block<2>(panel, K, h + n * K, z + n * ldz + c, ldz, accumulate); break;
      case 1: panel_block<1>(panel, K, h + n * K, z + n * ldz + c, ldz, accumulate); break;
      default: break;
    }
  }
}

// The columns a panel product does not cover: z[n * ldz + c] (+)= sum_k h[n * K + k] rhs(k, c), plainly.
void plain_product(const float *w, int64_t ldw, bool transposed, int64_t K, int64_t c0, int64_t c1, const float *h,
                   int64_t N, float *z, int64_t ldz, bool accumulate) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = c0; c < c1; ++c) {
      float s = accumulate ? z[n * ldz + c] : 0.0f;
      for (int64_t k = 0; k < K; ++k) s += h[n * K + k] * (transposed ? w[c * ldw + k] : w[k * ldw + c]);
      z[n * ldz + c] = s;
    }
}

// A thread's columns [c0, c1) of a recurrent product: whole panels, then the rest plainly.
void recurrent_product(const Panels &P, const float *w, int64_t ldw, bool transposed, int64_t c0, int64_t c1,
                       const float *h, int64_t N, float *z, int64_t ldz, bool accumulate) {
  const int64_t split = std::max(c0, std::min(c1, P.C));
  const int64_t whole = c0 + (split - c0) / kPanel * kPanel;
  if (c0 % kPanel == 0) {
    panel_product(P, c0, whole, h, N, z, ldz, accumulate);
    plain_product(w, ldw, transposed, P.K, whole, c1, h, N, z, ldz, accumulate);
  } else {
    plain_product(w, ldw, transposed, P.K, c0, c1, h, N, z, ldz, accumulate);
  }
}

// The barrier between time steps. OpenMP's spins until its partner arrives, which is fastest on an idle machine
// but collapses when another process (a second msrun worker on the same cores, any busy host) takes the core
// its partner needs: two such processes ran 15-20x slower. This one spins briefly (a step's work is 0.1-0.3 ms,
// so partners normally arrive within microseconds) and then yields the core.
class StepBarrier {
 public:
  // Called by every thread of the current OpenMP team.
  void wait() {
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == omp_get_num_threads()) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    for (int spin = 0; generation_.load(std::memory_order_acquire) == generation; ++spin) {
      if (spin < kSpins) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      } else {
        sched_yield();
      }
    }
  }

 private:
  static constexpr int kSpins = 4000;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
};

// The calling thread's share [begin, end) of `n` items among the OpenMP team, in blocks of kPanel (whole panels,
// whole cache lines).
inline void slice(int64_t n, int64_t *begin, int64_t *end) {
  const int t = omp_get_thread_num(), threads = omp_get_num_threads();
  const int64_t blocks = (n + kPanel - 1) / kPanel;
  const int64_t per = blocks / threads, extra = blocks % threads;
  const int64_t b0 = t * per + std::min<int64_t>(t, extra);
  const int64_t b1 = b0 + per + (t < extra ? 1 : 0);
  *begin = std::min(n, b0 * kPanel);
  *end = std::min(n, b1 * kPanel);
}

// C (M x N) = op(A) op(B) + beta C, row-major, split over the OpenMP team along the longer of M and N (one
// single-threaded oneDNN call per thread; splitting the longer side ran the four products of a 4 x 10 s call
// at 450-485 GFLOP/s, the columns always 420-470).
void parallel_gemm(char ta, char tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                   int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  const bool rows = M > N;
#pragma omp parallel
  {
    int64_t i0, i1;
    slice(rows ? M : N, &i0, &i1);
    if (i1 > i0) {
      const float *a = A, *b = B;
      float *c = C;
      int64_t m = M, n = N;
      if (rows) {
        a = ta == 'N' ? A + i0 * lda : A + i0;
        c = C + i0 * ldc;
        m = i1 - i0;
      } else {
        b = tb == 'T' ? B + i0 * ldb : B + i0;
        c = C + i0;
        n = i1 - i0;
      }
      if (K > 0) {
        dnnl_sgemm(ta, tb, m, n, K, 1.0f, a, lda, b, ldb, beta, c, ldc);
      } else {
        for (int64_t r = 0; r < m; ++r)
          for (int64_t j = 0; j < n; ++j) c[r * ldc + j] = beta == 0.0f ? 0.0f : beta * c[r * ldc + j];
      }
    }
  }
}

bool all_float32(int nparam, const char **dtypes) {
  for (int k = 0; k < nparam; ++k)
    if (std::strcmp(dtypes[k], "float32") != 0 && std::strcmp(dtypes[k], "float") != 0) return false;
  return true;
}

// Frames T, clips N, input size I, hidden size H and gate rows G = 4H of a call whose first three inputs are
// x (T, N, I), w_ih (4H, I), w_hh (4H, H), as both entry points take them; false when they disagree.
struct Dims {
  int64_t T, N, I, H, G;
};

bool read_dims(int nparam, int expected, int *ndims, int64_t **shapes, const char **dtypes, Dims *d) {
  if (nparam != expected || ndims[0] != 3 || !all_float32(nparam, dtypes)) return false;
  d->T = shapes[0][0];
  d->N = shapes[0][1];
  d->I = shapes[0][2];
  d->H = shapes[2][1];
  d->G = 4 * d->H;
  return shapes[1][0] == d->G && shapes[1][1] == d->I && shapes[2][0] == d->G;
}

// A frame's cell state from its activated gates: what the forward computes and the backward rebuilds, in one
// place so both round alike. c_prev is null at the first frame (zero initial state).
inline float next_cell(float i, float f, float g, const float *c_prev, int64_t j) {
  return (c_prev ? f * c_prev[j] : 0.0f) + i * g;
}

}  // namespace

extern "C" int LstmForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *,
                           void *) {
  Dims d;
  if (!read_dims(nparam, 6, ndims, shapes, dtypes, &d) || shapes[3][0] != d.G) return 1;
  const int64_t T = d.T, N = d.N, I = d.I, H = d.H, G = d.G;
  const float *x = static_cast<const float *>(params[0]);
  const float *w_ih = static_cast<const float *>(params[1]);
  const float *w_hh = static_cast<const float *>(params[2]);
  const float *bias = static_cast<const float *>(params[3]);
  float *y = static_cast<float *>(params[4]);
  float *gates = static_cast<float *>(params[5]);
  if (T == 0 || N == 0) return 0;
  std::vector<float> cell_buffer(static_cast<size_t>(2 * N * H));  // c_{t-1} and c_t, alternately

  // Input projections of every frame at once: gates = x W_ih^T (the bias is added with the activations).
  parallel_gemm('N', 'T', T * N, G, I, x, I, w_ih, I, 0.0f, gates, G);

  const Panels panels(w_hh, H, G, H, true);  // W_hh^T (H x 4H)
  StepBarrier barrier;
#pragma omp parallel
  {
    int64_t j0, j1;
    slice(H, &j0, &j1);
    for (int64_t t = 0; t < T; ++t) {
      float *z = gates + t * N * G;
      if (t > 0 && j1 > j0) {
        const float *h_prev = y + (t - 1) * N * H;
        for (int k = 0; k < 4; ++k)  // this thread's units of gate k: z[:, kH + j0 : kH + j1] += h W_hh[kH + j0 ...]^T
          recurrent_product(panels, w_hh, H, true, k * H + j0, k * H + j1, h_prev, N, z, G, true);
      }
      for (int64_t n = 0; n < N; ++n) {
        float *zn = z + n * G;
        const float *c_prev = t > 0 ? cell_buffer.data() + ((t - 1) % 2 * N + n) * H : nullptr;
        float *c_now = cell_buffer.data() + (t % 2 * N + n) * H;
        float *h_now = y + (t * N + n) * H;
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) {
          const float i = sigmoid(zn[j] + bias[j]), f = sigmoid(zn[H + j] + bias[H + j]);
          const float g = std::tanh(zn[2 * H + j] + bias[2 * H + j]), o = sigmoid(zn[3 * H + j] + bias[3 * H + j]);
          const float c = next_cell(i, f, g, c_prev, j);
          zn[j] = i;
          zn[H + j] = f;
          zn[2 * H + j] = g;
          zn[3 * H + j] = o;
          c_now[j] = c;
          h_now[j] = o * std::tanh(c);
        }
      }
      barrier.wait();
    }
  }
  return 0;
}

extern "C" int LstmBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *,
                            void *) {
  Dims d;
  if (!read_dims(nparam, 9, ndims, shapes, dtypes, &d)) return 1;
  const int64_t T = d.T, N = d.N, I = d.I, H = d.H, G = d.G;
  const float *x = static_cast<const float *>(params[0]);
  const float *w_ih = static_cast<const float *>(params[1]);
  const float *w_hh = static_cast<const float *>(params[2]);
  const float *gates = static_cast<const float *>(params[3]);
  const float *dy = static_cast<const float *>(params[4]);
  float *dx = static_cast<float *>(params[5]);
  float *dw_ih = static_cast<float *>(params[6]);
  float *dw_hh = static_cast<float *>(params[7]);
  float *db = static_cast<float *>(params[8]);
  if (T == 0 || N == 0) {
    std::memset(dw_ih, 0, G * I * sizeof(float));
    std::memset(dw_hh, 0, G * H * sizeof(float));
    std::memset(db, 0, G * sizeof(float));
    return 0;
  }

  // The cell states and outputs of every frame, rebuilt from the kept gates exactly as the forward made them.
  const std::unique_ptr<float[]> cell_buffer = uninitialised(T * N * H), y_buffer = uninitialised(T * N * H);
  float *cell = cell_buffer.get();
  float *y = y_buffer.get();
#pragma omp parallel
  {
    int64_t j0, j1;
    slice(H, &j0, &j1);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) {
        const float *a = gates + (t * N + n) * G;
        const float *c_prev = t > 0 ? cell + ((t - 1) * N + n) * H : nullptr;
        float *c_now = cell + (t * N + n) * H;
        float *h_now = y + (t * N + n) * H;
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) {
          const float c = next_cell(a[j], a[H + j], a[2 * H + j], c_prev, j);
          c_now[j] = c;
          h_now[j] = a[3 * H + j] * std::tanh(c);
        }
      }
  }
  // Gradients of the pre-activations, every frame (the big products below take them all at once).
  const std::unique_ptr<float[]> dz_buffer = uninitialised(T * N * G);
  float *dz = dz_buffer.get();
  std::vector<float> dh_next(static_cast<size_t>(N * H), 0.0f), dc_next(static_cast<size_t>(N * H), 0.0f);
  const Panels panels(w_hh, G, H, H, false);  // W_hh (4H x H)
  StepBarrier barrier;
#pragma omp parallel
  {
    int64_t j0, j1;
    slice(H, &j0, &j1);
    for (int k = 0; k < 4; ++k)  // db = sum of dz over frames and clips, summed here as each thread makes its units
      for (int64_t j = j0; j < j1; ++j) db[k * H + j] = 0.0f;
    for (int64_t t = T - 1; t >= 0; --t) {
      if (t < T - 1 && j1 > j0) {  // this thread's units of dh_t from step t+1: dz_{t+1} W_hh[:, j0:j1]
        recurrent_product(panels, w_hh, H, false, j0, j1, dz + (t + 1) * N * G, N, dh_next.data(), H, false);
      }
      for (int64_t n = 0; n < N; ++n) {
        const float *a = gates + (t * N + n) * G;
        const float *c_now = cell + (t * N + n) * H;
        const float *c_prev = t > 0 ? cell + ((t - 1) * N + n) * H : nullptr;
        const float *dyn = dy + (t * N + n) * H;
        float *dhn = dh_next.data() + n * H;
        float *dcn = dc_next.data() + n * H;
        float *d = dz + (t * N + n) * G;
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) {
          const float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
          const float tc = std::tanh(c_now[j]);
          const float dh = dyn[j] + (t < T - 1 ? dhn[j] : 0.0f);
          const float dc = dh * o * (1.0f - tc * tc) + (t < T - 1 ? dcn[j] : 0.0f);
          d[j] = dc * g * i * (1.0f - i);
          d[H + j] = (c_prev ? dc * c_prev[j] : 0.0f) * f * (1.0f - f);
          d[2 * H + j] = dc * i * (1.0f - g * g);
          d[3 * H + j] = dh * tc * o * (1.0f - o);
          dcn[j] = dc * f;
          db[j] += d[j];
          db[H + j] += d[H + j];
          db[2 * H + j] += d[2 * H + j];
          db[3 * H + j] += d[3 * H + j];
        }
      }
      barrier.wait();
    }
  }

  parallel_gemm('N', 'N', T * N, I, G, dz, G, w_ih, I, 0.0f, dx, I);           // dx = dz W_ih
  parallel_gemm('T', 'N', G, I, T * N, dz, G, x, I, 0.0f, dw_ih, I);           // dW_ih = dz^T x
  parallel_gemm('T', 'N', G, H, (T - 1) * N, dz + N * G, G, y, H, 0.0f, dw_hh, H);  // dW_hh = dz_{1:}^T h_{:-1}
  return 0;
}
