"""The classical baseline: NBSVM with word unigrams and bigrams (Wang & Manning 2012, "Baselines and Bigrams:
Simple, Good Sentiment and Topic Classification", ACL), on the same split and folds as minibert.

A linear SVM on binarized n-gram features, each scaled by its naive-Bayes log-count ratio:

    x_hat = 1{count > 0}                              binarized uni+bigram indicators of a review
    p = alpha + sum of x_hat over positive reviews   q = the same over negative reviews   (alpha = 1)
    r = log( (p / |p|_1) / (q / |q|_1) )             how much more often a feature occurs in positive reviews
    SVM (L2-regularized, squared hinge, C = 1) on x = r * x_hat  ->  w, b
    w' = (1 - beta) * mean(|w|) + beta * w           interpolation with beta = 0.25
    predict positive when w' . x + b > 0

The paper's figure on this corpus (RT-2k, Pang & Lee's 10-fold cross-validation): 89.45%.
The corpus' text is already tokenized (words and punctuation separated by spaces), so a review's tokens are
its lower-cased, whitespace-separated words, as in the paper.

    >>> ngrams("a fine film .".split())
    ['a', 'fine', 'film', '.', 'a fine', 'fine film', 'film .']
"""

from __future__ import annotations

import statistics

import numpy as np
import scipy.optimize
import scipy.sparse

from minibert.data import Review, file_number, fold_of

ALPHA = 1.0  # Laplace smoothing of the feature counts
C = 1.0  # SVM regularization: the paper's C for NBSVM
BETA = 0.25  # interpolation between the mean weight and the SVM's weights


def ngrams(words: list[str]) -> list[str]:
    """Unigrams then bigrams of a list of words."""
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def pang_lee_fold(fileid: str) -> int:
    """Pang & Lee's fold of a file, 0-based: cv000-cv099 is fold 0 (their fold 1), ..., cv900-cv999 fold 9."""
    return fold_of(fileid) - 1


def binary_features(reviews: list[Review]):
    """(len(reviews), |V|) sparse 0/1 matrix: which n-grams each review contains, V being every n-gram of
    these reviews. Built once for the whole corpus; each split then keeps the columns its training part has."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, review in enumerate(reviews):
        ids = {vocab.setdefault(g, len(vocab)) for g in ngrams(review.text.lower().split())}
        rows += [i] * len(ids)
        cols += ids
    return scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(reviews), len(vocab)))


def log_count_ratio(X, y: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """r = log((p / |p|_1) / (q / |q|_1)), p and q the smoothed feature counts of the positive and negative reviews."""
    p = alpha + np.asarray(X[y == 1].sum(axis=0)).ravel()
    q = alpha + np.asarray(X[y == 0].sum(axis=0)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


def linear_svm(X, y: np.ndarray, C: float = C) -> tuple[np.ndarray, float]:
    """The L2-regularized, L2-loss (squared hinge) linear SVM of liblinear, which the paper used, with
    liblinear's bias: a constant feature 1 whose weight b is regularized like the others.

        primal: min over w, b of  0.5 (|w|^2 + b^2) + C sum_i max(0, 1 - s_i (w . x_i + b))^2    (s_i = +-1)
        dual:   min over a >= 0 of 0.5 a^T (Q + I / 2C) a - sum(a),  Q_ij = s_i s_j (x_i . x_j + 1)
                then w = sum_i a_i s_i x_i and b = sum_i a_i s_i

    The dual has one variable per review (1,600) instead of one per n-gram (~450,000), so L-BFGS-B solves it
    in well under a second. Returns (w, b)."""
    s = 2.0 * y - 1.0  # (N,) labels as +-1
    K = (X @ X.T).toarray() + 1.0  # (N, N) dot products of the reviews, bias feature included
    Q = s[:, None] * s[None, :] * K + np.eye(len(s)) / (2 * C)

    def objective(a):
        Qa = Q @ a
        return 0.5 * a @ Qa - a.sum(), Qa - 1.0

    res = scipy.optimize.minimize(objective, np.zeros(len(s)), jac=True, method="L-BFGS-B", bounds=[(0, None)] * len(s),
                                  options={"maxiter": 10_000, "ftol": 1e-12, "gtol": 1e-8})
    a_s = res.x * s  # (N,)
    return X.T @ a_s, float(a_s.sum())


def nbsvm_accuracy(X, y: np.ndarray, train: np.ndarray, test: np.ndarray | None = None, beta: float = BETA, C: float = C) -> float:
    """Train NBSVM on the rows `train` (a boolean mask) of the features X; return its accuracy on the rows
    `test` (default: all the others). C: the SVM's regularization (the paper's 1.0 unless chosen on validation)."""
    test = ~train if test is None else test
    seen = np.asarray(X[train].sum(axis=0)).ravel() > 0  # n-grams of the training reviews: the vocabulary
    X = X[:, seen]
    r = log_count_ratio(X[train], y[train])
    Xr = X.multiply(r).tocsr()  # (N, |V|) each indicator scaled by its ratio
    w, b = linear_svm(Xr[train], y[train], C)
    w = (1 - beta) * np.abs(w).mean() + beta * w
    pred = (Xr[test] @ w + b) > 0
    return float((pred == y[test]).mean())


def evaluate(reviews: list[Review], folds: tuple[int, ...] | list[int] = tuple(range(10))) -> dict:
    """NBSVM-bi on the fixed split minibert reports (cv000-cv799 train, cv800-cv999 test) and in Pang & Lee's
    cross-validation (each fold tested once by a model trained on the other nine), from one feature matrix."""
    X = binary_features(reviews)
    y = np.array([r.label for r in reviews])
    number = np.array([file_number(r.fileid) for r in reviews])
    fold = np.array([pang_lee_fold(r.fileid) for r in reviews])
    acc = [nbsvm_accuracy(X, y, fold != k) for k in folds]
    return {
        "fixed_split": {"accuracy": nbsvm_accuracy(X, y, number < 800), "train_reviews": int((number < 800).sum()),
                        "test_reviews": int((number >= 800).sum())},
        "cv": {
            "folds": [k + 1 for k in folds],  # numbered 1-10 as in Pang & Lee
            "accuracy": acc,
            "accuracy_mean": statistics.mean(acc),
            "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        },
    }
