"""Leave-one-dataset-out cross-validation as a scikit-learn splitter that nirs4all accepts.

:class:`LODOSplitter` holds out one dataset (instrument, site, campaign: any label) per
fold, trains on every other row, and tests on the held-out dataset's rows. The label of
each row is the ``groups`` argument of :meth:`LODOSplitter.split`, so it works wherever a
scikit-learn splitter does::

    cross_val_score(PLSRegression(10), X, y, cv=LODOSplitter(), groups=dataset_of_row)

and as a nirs4all split step, with the label read from a metadata column::

    nirs4all.run(pipeline=[{"split": LODOSplitter(), "group_by": "dataset"}, SNV(), PLSRegression(10)],
                 dataset=spectro_dataset_with_a_dataset_column, refit=False, save_artifacts=False)

How the labels reach the splitter inside nirs4all (1.4.10)
----------------------------------------------------------
nirs4all resolves the ``group_by`` column and passes it as ``groups`` only to the splitters
its split controller lists as *native* group splitters (a table keyed by class name:
``GroupKFold``, ``LeaveOneGroupOut``, …). Any other splitter is wrapped in
``GroupedSplitterWrapper``, which averages the rows of each group into one row and calls
``split(X_mean, y_mean)`` *without* labels: a leave-one-out over those rows is a LODO, but
the ``datasets=`` subset could not be honoured and a wrong call would pass silently.
Importing this module therefore declares ``LODOSplitter`` a native, group-requiring
splitter in that table (:func:`register_with_nirs4all`), on both engines (``dag-ml`` and
``legacy``); the proposal in ``docs/upstream.md`` replaces this by a public declaration.
If a future nirs4all drops the table, the wrapper calls ``split`` without ``groups`` and
the call fails with a message that says so, never with a silent row-wise split.

On the ``legacy`` engine a split with a single fold (``datasets=[one]``) becomes nirs4all's
train/test holdout: the held-out dataset is scored as the ``test`` partition, not as a
``val`` fold (``dag-ml`` keeps it a fold).

With a dataset ``repetition`` column, nirs4all merges it with ``group_by`` into
connected-component numbers, so the labels are no longer the dataset names: pass
``"ignore_repetition": True`` in the split step to use ``datasets=`` there.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import indexable
from sklearn.utils.validation import _num_samples

__all__ = ["LODOSplitter", "register_with_nirs4all"]

_NO_GROUPS = (
    "LODOSplitter needs the dataset label of every row and got groups=None: pass "
    "groups=<one label per row> (scikit-learn: cross_val_score(..., cv=LODOSplitter(), groups=...)); "
    "in nirs4all use the step {'split': LODOSplitter(), 'group_by': '<metadata column>'}. "
    "Inside nirs4all this also means the splitter was wrapped (one averaged row per group, no labels) "
    "because vitnirs.lodo_splitter could not register it as a native group splitter."
)


class LODOSplitter(BaseCrossValidator):
    """Leave-one-dataset-out cross-validator: one fold per held-out dataset.

    Fold ``k`` tests on every row of dataset ``d_k`` and trains on every row of every
    other dataset (rows of datasets that are not held out stay in train). Datasets are
    the distinct values of ``groups``; they are held out in sorted order (first-appearance
    order when the labels do not sort), or in the order of ``datasets``.

    Parameters
    ----------
    datasets : sequence of hashable, optional
        Labels of the datasets to hold out, one fold each, in this order (duplicates are
        ignored). ``None`` (default) holds out every dataset once, so every row is tested
        exactly once. A JSON-serialisable list, so the splitter can be a nirs4all step.

    See Also
    --------
    sklearn.model_selection.LeaveOneGroupOut : the same folds for ``datasets=None``, with
        no subset, no dataset-level error messages and no nirs4all registration.

    Examples
    --------
    >>> import numpy as np
    >>> groups = ["corn_m5", "corn_m5", "corn_mp5", "tablets", "tablets"]
    >>> for train, test in LODOSplitter().split(np.zeros((5, 3)), groups=groups):
    ...     print(sorted({groups[i] for i in test}), train.tolist(), test.tolist())
    ['corn_m5'] [2, 3, 4] [0, 1]
    ['corn_mp5'] [0, 1, 3, 4] [2]
    ['tablets'] [0, 1, 2] [3, 4]
    >>> LODOSplitter(datasets=["tablets"]).get_n_splits()
    1
    """

    # Ask scikit-learn's metadata routing for ``groups`` (as GroupsConsumerMixin does).
    __metadata_request__split = {"groups": True}

    def __init__(self, datasets: Sequence[Hashable] | None = None):
        self.datasets = datasets

    def _held_out_request(self) -> list[Hashable] | None:
        """``datasets`` validated and de-duplicated (order kept), or None."""
        if self.datasets is None:
            return None
        if isinstance(self.datasets, str | bytes) or not np.iterable(self.datasets):
            raise ValueError(
                f"datasets must be a list of dataset labels, got {self.datasets!r}"
                + (
                    f"; for one dataset write datasets=[{self.datasets!r}]"
                    if isinstance(self.datasets, str)
                    else ""
                )
            )
        request = list(dict.fromkeys(self.datasets))
        if not request:
            raise ValueError("datasets is empty: give at least one dataset label, or None for all datasets")
        return request

    @staticmethod
    def _labels(groups, n_samples: int) -> tuple[np.ndarray, list[Hashable]]:
        """``(codes (n,) int64, labels)``: each row's dataset index and the dataset labels."""
        if groups is None:
            raise ValueError(_NO_GROUPS)
        values = np.asarray(groups, dtype=object) if not isinstance(groups, np.ndarray) else groups
        if values.ndim != 1:
            raise ValueError(
                f"groups must hold one dataset label per row (1-D), got an array of shape {values.shape}"
            )
        if len(values) != n_samples:
            raise ValueError(f"groups has {len(values)} labels for {n_samples} rows of X: one label per row")
        try:
            codes, labels = pd.factorize(values, sort=True)
        except TypeError:  # labels that do not sort (mixed types): first-appearance order
            codes, labels = pd.factorize(values, sort=False)
        missing = np.flatnonzero(codes < 0)
        if missing.size:
            raise ValueError(
                f"groups has {missing.size} missing label(s) (None/NaN), first at row(s) "
                f"{missing[:5].tolist()}: every row needs the label of its dataset"
            )
        labels = list(labels)
        if len(labels) < 2:
            raise ValueError(
                f"leave-one-dataset-out needs at least 2 datasets in groups, got {len(labels)} "
                f"({labels[0]!r}): holding it out would leave nothing to train on"
            )
        return codes.astype(np.int64), labels

    def _held_out_codes(self, labels: list[Hashable]) -> list[int]:
        """Dataset indices (into ``labels``) of the folds, in fold order."""
        request = self._held_out_request()
        if request is None:
            return list(range(len(labels)))
        index = {label: k for k, label in enumerate(labels)}
        unknown = [d for d in request if d not in index]
        if unknown:
            shown = ", ".join(repr(label) for label in labels[:20]) + (" …" if len(labels) > 20 else "")
            raise ValueError(f"datasets {unknown!r} are not labels of groups; the datasets are: {shown}")
        return [index[d] for d in request]

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Train and test row indices of each fold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The spectra (only their number is used).
        y : array-like of shape (n_samples,) or (n_samples, n_targets), optional
            Ignored; accepted for the scikit-learn and nirs4all calling conventions.
        groups : array-like of shape (n_samples,)
            The dataset label of each row (required).

        Yields
        ------
        train : ndarray of shape (n_train,), int
            Rows of every dataset but the held-out one.
        test : ndarray of shape (n_test,), int
            Rows of the held-out dataset.

        Raises
        ------
        ValueError
            When ``groups`` is missing, not one label per row, has missing labels or fewer
            than 2 datasets, or when ``datasets`` names a label that is not in ``groups``.
        """
        codes, labels = self._labels(groups, _num_samples(X))  # (n,) dataset index of each row
        folds = self._held_out_codes(labels)
        indexable(X, y)  # y, when given, has one entry per row
        rows = np.arange(codes.size)
        for k in folds:
            test = codes == k
            yield rows[~test], rows[test]

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of folds: the size of ``datasets``, else the number of datasets in ``groups``.

        Parameters
        ----------
        X, y : object
            Ignored (``X`` sizes the check of ``groups`` when given).
        groups : array-like of shape (n_samples,), optional
            The dataset label of each row; required when ``datasets`` is None.

        Returns
        -------
        int
            The number of folds :meth:`split` yields for these ``groups``.
        """
        if groups is None:
            request = self._held_out_request()
            if request is None:
                raise ValueError(_NO_GROUPS)
            return len(request)
        n_samples = len(groups) if X is None else _num_samples(X)
        _, labels = self._labels(groups, n_samples)
        return len(self._held_out_codes(labels))


def register_with_nirs4all() -> bool:
    """Declare :class:`LODOSplitter` a native, group-requiring splitter to nirs4all.

    nirs4all 1.4.10 passes ``group_by`` labels as ``groups`` only to the splitters of its
    split controller's capability table (keyed by class name); this adds ``LODOSplitter``
    there, as ``LeaveOneGroupOut`` is. Idempotent; called when this module is imported.

    Returns
    -------
    bool
        True when the entry is in place, False when nirs4all is not installed or its
        table is not where 1.4.10 keeps it (then ``split`` raises the no-labels error).
    """
    try:
        from nirs4all.controllers.splitters import split as controller
    except ImportError:
        return False
    table = getattr(controller, "_SPLITTER_GROUPING_CAPABILITIES", None)
    native = getattr(controller, "_NATIVE_REQUIRED_GROUP_CAPABILITY", None)
    if not isinstance(table, dict) or native is None:
        return False
    table.setdefault(LODOSplitter.__name__, native)
    return True


register_with_nirs4all()
