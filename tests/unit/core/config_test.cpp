// strata::load_config: defaults, values from a TOML file, --set overrides, the errors (each naming the
// file or the --set argument, and the field), and to_toml round trips.
#include "core/config.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"

namespace strata {
namespace {

// A fresh directory for one test's files, removed afterwards.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "strata-config-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  // The strata::Error message load_config throws; a test failure if it throws something else or nothing.
  static std::string error_of(const std::string& path, const std::vector<std::string>& overrides = {}) {
    try {
      load_config(path, overrides);
    } catch (const Error& e) {
      return e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "load_config threw a non-strata exception: " << e.what();
      return e.what();
    }
    ADD_FAILURE() << "load_config accepted " << path;
    return "";
  }
  std::filesystem::path dir_;
};

void expect_same(const Config& a, const Config& b) {
  EXPECT_EQ(a.model.n_layer, b.model.n_layer);
  EXPECT_EQ(a.model.n_head, b.model.n_head);
  EXPECT_EQ(a.model.d_model, b.model.d_model);
  EXPECT_EQ(a.model.vocab_size, b.model.vocab_size);
  EXPECT_EQ(a.model.seq_len, b.model.seq_len);
  EXPECT_EQ(a.data.path, b.data.path);
  EXPECT_EQ(a.data.shuffle, b.data.shuffle);
  EXPECT_EQ(a.data.seed, b.data.seed);
  const TrainConfig &x = a.train, &y = b.train;
  EXPECT_EQ(x.batch_size, y.batch_size);
  EXPECT_EQ(x.steps, y.steps);
  EXPECT_EQ(x.lr, y.lr);  // exact: doubles must round-trip through the text
  EXPECT_EQ(x.min_lr, y.min_lr);
  EXPECT_EQ(x.warmup_steps, y.warmup_steps);
  EXPECT_EQ(x.lr_schedule, y.lr_schedule);
  EXPECT_EQ(x.weight_decay, y.weight_decay);
  EXPECT_EQ(x.beta1, y.beta1);
  EXPECT_EQ(x.beta2, y.beta2);
  EXPECT_EQ(x.eps, y.eps);
  EXPECT_EQ(x.grad_clip, y.grad_clip);
  EXPECT_EQ(x.seed, y.seed);
  EXPECT_EQ(x.log_every, y.log_every);
  EXPECT_EQ(x.eval_every, y.eval_every);
  EXPECT_EQ(x.eval_batches, y.eval_batches);
  EXPECT_EQ(x.out_dir, y.out_dir);
  EXPECT_EQ(x.save_weights, y.save_weights);
  EXPECT_EQ(x.sample_tokens, y.sample_tokens);
  EXPECT_EQ(x.sample_temperature, y.sample_temperature);
  EXPECT_EQ(a.parallel.dp, b.parallel.dp);
  EXPECT_EQ(a.parallel.tp, b.parallel.tp);
  EXPECT_EQ(a.parallel.pp, b.parallel.pp);
}

TEST_F(ConfigTest, Defaults) {
  const Config c = load_config("");
  EXPECT_EQ(c.model.n_layer, 6);
  EXPECT_EQ(c.model.n_head, 6);
  EXPECT_EQ(c.model.d_model, 384);
  EXPECT_EQ(c.model.vocab_size, 257);
  EXPECT_EQ(c.model.seq_len, 256);
  EXPECT_TRUE(c.data.shuffle);
  EXPECT_EQ(c.train.lr, 3e-4);
  EXPECT_EQ(c.train.eps, 1e-8);
  EXPECT_EQ(c.train.lr_schedule, "cosine");
  EXPECT_EQ(c.source, "<defaults>");
  // An empty file gives the defaults too; config_fields() documents every field.
  expect_same(load_config(write("empty.toml", "")), c);
  for (const auto& f : config_fields()) EXPECT_FALSE(f.doc.empty()) << f.key;
}

TEST_F(ConfigTest, ValuesFromFile) {
  const auto path = write("run.toml",
                          "[model]\nn_layer = 4\nd_model = 64\nn_head = 4\n"
                          "[data]\npath = \"data/tiny.h5\"\nshuffle = false\n"
                          "[train]\nlr = 0.001\nmin_lr = 2\nlr_schedule = \"linear\"\n");
  // min_lr = 2 > lr: invalid; fix it with --set below. First the plain values:
  const Config c = load_config(path, {"train.min_lr=0.0001"});
  EXPECT_EQ(c.model.n_layer, 4);
  EXPECT_EQ(c.model.d_model, 64);
  EXPECT_EQ(c.model.n_head, 4);
  EXPECT_EQ(c.data.path, "data/tiny.h5");
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.train.lr, 0.001);
  EXPECT_EQ(c.train.min_lr, 0.0001);
  EXPECT_EQ(c.train.lr_schedule, "linear");
  EXPECT_EQ(c.model.seq_len, 256);  // untouched fields keep their defaults
  EXPECT_EQ(c.source, path);
  // A float field accepts an integer literal.
  EXPECT_EQ(load_config(write("int.toml", "[train]\nsample_temperature = 2\n")).train.sample_temperature, 2.0);
}

TEST_F(ConfigTest, SetOverridesDefaultsAndFile) {
  const auto path = write("run.toml", "[model]\nn_layer = 4\n[train]\nlr = 0.001\n");
  const Config c = load_config(path, {"train.lr=0.01", "data.shuffle=false", "model.n_layer=3"});
  EXPECT_EQ(c.train.lr, 0.01);
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.model.n_layer, 3);
  // Strings, with or without quotes; the last --set of a key wins.
  const Config d = load_config("", {"train.out_dir=\"runs/x y\"", "data.path=a.h5", "train.steps=5", "train.steps=7"});
  EXPECT_EQ(d.train.out_dir, "runs/x y");
  EXPECT_EQ(d.data.path, "a.h5");
  EXPECT_EQ(d.train.steps, 7);
}

TEST_F(ConfigTest, UnknownKeyNamesFileAndKey) {
  const auto path = write("typo.toml", "[model]\nn_layers = 4\n");
  const std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.n_layers"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown"), std::string::npos) << msg;
  // An unknown section too.
  const auto path2 = write("section.toml", "[optimizer]\nlr = 1.0\n");
  const std::string msg2 = error_of(path2);
  EXPECT_NE(msg2.find(path2), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("optimizer.lr"), std::string::npos) << msg2;
}

TEST_F(ConfigTest, WrongTypeNamesFileFieldAndExpectedType) {
  const auto path = write("type.toml", "[model]\nn_layer = \"four\"\n");
  const std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.n_layer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("integer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("four"), std::string::npos) << msg;
  // A float where an integer is expected, and an integer where a bool is expected.
  const auto p2 = write("float.toml", "[train]\nbatch_size = 8.5\n");
  EXPECT_NE(error_of(p2).find("train.batch_size"), std::string::npos);
  const auto p3 = write("bool.toml", "[data]\nshuffle = 1\n");
  EXPECT_NE(error_of(p3).find("data.shuffle"), std::string::npos);
}

TEST_F(ConfigTest, IntegerOutOfRangeIsRejected) {
  // 2^32 + 3 does not fit the int field model.n_layer: it must be an error, not silently wrap to 3.
  const auto path = write("big.toml", "[model]\nn_layer = 4294967299\n");
  const std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.n_layer"), std::string::npos) << msg;
  const std::string msg2 = error_of("", {"model.n_layer=4294967299"});
  EXPECT_NE(msg2.find("model.n_layer"), std::string::npos) << msg2;
}

TEST_F(ConfigTest, DModelNotDivisibleByHeads) {
  const auto path = write("heads.toml", "[model]\nd_model = 100\nn_head = 6\n");
  const std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.d_model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.n_head"), std::string::npos) << msg;
  // The same relation broken through --set is caught after the overrides are applied.
  const std::string msg2 = error_of(write("ok.toml", "[model]\nd_model = 96\nn_head = 6\n"), {"model.n_head=5"});
  EXPECT_NE(msg2.find("model.d_model"), std::string::npos) << msg2;
}

TEST_F(ConfigTest, BadSetValueNamesArgumentAndField) {
  for (const std::string arg : {"model.n_layer=abc", "model.n_layer=3x", "train.lr=fast", "data.shuffle=yes"}) {
    const std::string msg = error_of("", {arg});
    EXPECT_NE(msg.find("--set " + arg), std::string::npos) << msg;
    EXPECT_NE(msg.find(arg.substr(0, arg.find('='))), std::string::npos) << msg;
    EXPECT_NE(msg.find("expected"), std::string::npos) << msg;
  }
  // No '=' at all.
  EXPECT_NE(error_of("", {"train.lr"}).find("section.key=value"), std::string::npos);
}

TEST_F(ConfigTest, UnknownSetKey) {
  const std::string msg = error_of("", {"train.learning_rate=0.1"});
  EXPECT_NE(msg.find("train.learning_rate"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown"), std::string::npos) << msg;
}

TEST_F(ConfigTest, TomlSyntaxErrorNamesFile) {
  const auto path = write("broken.toml", "[model]\nn_layer = = 4\n");
  const std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST_F(ConfigTest, MissingFileNamesFile) {
  const std::string path = (dir_ / "does-not-exist.toml").string();
  const std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST_F(ConfigTest, ToTomlRoundTrips) {
  const Config c = load_config(
      "", {"model.n_layer=3", "model.d_model=48", "model.n_head=3", "data.path=data/some \"quoted\" name.h5",
           "data.shuffle=false", "train.lr=0.00123456789012345", "train.min_lr=1e-7", "train.eps=1e-12",
           "train.beta2=0.999", "train.weight_decay=0", "train.lr_schedule=constant", "train.save_weights=w.h5",
           "train.sample_temperature=1", "data.seed=-5"});
  const std::string text = to_toml(c);
  const Config back = load_config(write("resolved.toml", text));
  expect_same(back, c);
  EXPECT_EQ(to_toml(back), text);
  // The defaults round-trip too.
  expect_same(load_config(write("defaults.toml", to_toml(Config{}))), Config{});
}

TEST_F(ConfigTest, ModelKindsHaveTheirOwnFields) {
  const Config c = load_config(write("cnn.toml",
                                     "[model]\nkind = \"cnn\"\nchannels = [8, 24, 4]\npool = \"avg\"\n"
                                     "norm_groups = 4\ninput_shape = [1, 8, 8]\n"),
                               {"model.hidden=32", "model.num_classes=10"});
  EXPECT_EQ(c.model.kind, "cnn");
  EXPECT_EQ(c.model.channels, (std::vector<int64_t>{8, 24, 4}));
  EXPECT_EQ(c.model.pool, "avg");
  EXPECT_EQ(c.model.input_shape, (std::vector<int64_t>{1, 8, 8}));
  EXPECT_EQ(c.model.hidden, 32);
  // Lists from --set, with or without brackets; the resolved TOML holds only the kind's fields and round-trips.
  EXPECT_EQ(load_config("", {"model.kind=cnn", "model.channels=4,8"}).model.channels, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(load_config("", {"model.kind=cnn", "model.channels=[ 4, 8 ]", "model.norm_groups=2"}).model.channels,
            (std::vector<int64_t>{4, 8}));
  const std::string text = to_toml(c);
  EXPECT_NE(text.find("channels = [8, 24, 4]"), std::string::npos) << text;
  EXPECT_EQ(text.find("n_head"), std::string::npos) << text;
  EXPECT_EQ(to_toml(load_config(write("back.toml", text))), text);
  const Config l = load_config("", {"model.kind=lstm", "model.cell=gru", "model.n_layer=3", "model.labels=step"});
  EXPECT_EQ(l.model.cell, "gru");
  EXPECT_EQ(to_toml(load_config(write("lstm.toml", to_toml(l)))), to_toml(l));
}

TEST_F(ConfigTest, AFieldOfAnotherKindIsAnErrorNamingIt) {
  const auto path = write("mixed.toml", "[model]\nkind = \"cnn\"\nn_head = 4\n");
  const std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.n_head is a field of model.kind = gpt, not of 'cnn'"), std::string::npos) << msg;
  const std::string set = error_of("", {"model.kind=lstm", "model.channels=4"});
  EXPECT_NE(set.find("--set model.channels=4: model.channels is a field of model.kind = cnn"), std::string::npos)
      << set;
  EXPECT_NE(error_of("", {"model.kind=resnet"}).find("model.kind = 'resnet': expected gpt, cnn or lstm"),
            std::string::npos);
}

TEST_F(ConfigTest, ModelKindValuesAreChecked) {
  auto expect_error = [&](std::vector<std::string> sets, const std::string& expected) {
    const std::string msg = error_of("", sets);
    EXPECT_NE(msg.find(expected), std::string::npos) << msg;
  };
  expect_error({"model.kind=cnn", "model.channels=[]"}, "model.channels is empty");
  expect_error({"model.kind=cnn", "model.channels=6,8", "model.norm_groups=4"},
               "model.norm_groups = 4 does not divide model.channels = [6, 8]");
  expect_error({"model.kind=cnn", "model.pool=median"}, "model.pool = 'median': expected max, avg or none");
  expect_error({"model.kind=cnn", "model.input_shape=8,8"}, "model.input_shape = [8, 8]: expected 3 positive sizes");
  expect_error({"model.kind=cnn", "model.channels=4,x"}, "model.channels: expected a list of integers");
  expect_error({"model.kind=lstm", "model.cell=rnn"}, "model.cell = 'rnn': expected lstm or gru");
  expect_error({"model.kind=lstm", "model.labels=token"}, "model.labels = 'token'");
  expect_error({"model.kind=lstm", "model.num_classes=1"}, "model.num_classes = 1: expected >= 2");
  expect_error({"model.kind=lstm", "train.sample_tokens=10"}, "sampling text applies to model.kind = gpt, not lstm");
  expect_error({"model.kind=cnn", "model.channels=4,4", "parallel.pp=3"},
               "parallel.pp = 3: expected 1 .. the number of model.channels = 2");
}

TEST_F(ConfigTest, LearningRateScheduleFieldsAreChecked) {
  auto expect_error = [&](std::vector<std::string> sets, const std::string& expected) {
    const std::string msg = error_of("", sets);
    EXPECT_NE(msg.find(expected), std::string::npos) << msg;
  };
  expect_error({"train.lr_schedule=poly"}, "train.lr_schedule = 'poly': expected constant, cosine, linear, step");
  expect_error({"train.lr_schedule=step", "train.lr_gamma=1.5"}, "train.lr_gamma = 1.5: expected in (0, 1] for step");
  expect_error({"train.lr_schedule=exponential", "train.lr_gamma=0"}, "train.lr_gamma = 0: expected in (0, 1]");
  expect_error({"train.lr_schedule=step", "train.lr_step_size=0"}, "train.lr_step_size = 0: expected >= 1");
  expect_error({"train.lr_schedule=multistep"}, "train.lr_milestones: expected at least one step for multistep");
  expect_error({"train.lr_schedule=multistep", "train.lr_milestones=50,40"},
               "train.lr_milestones: expected increasing steps, got 40 after 50");
  expect_error({"train.lr_schedule=multistep", "train.warmup_steps=10", "train.lr_milestones=5"},
               "train.lr_milestones[0] = 5: expected after the warm-up (> warmup_steps = 10)");
  expect_error({"train.lr_schedule=cosine_restarts", "train.lr_restart_period=0"},
               "train.lr_restart_period = 0: expected >= 1");
  expect_error({"train.lr_schedule=cosine_restarts", "train.lr_restart_mult=0"},
               "train.lr_restart_mult = 0: expected >= 1");
  expect_error({"train.lr_schedule=wsd", "train.lr_decay_fraction=0"},
               "train.lr_decay_fraction = 0: expected in (0, 1]");
  expect_error({"train.lr_schedule=wsd", "train.steps=100", "train.warmup_steps=90", "train.lr_decay_fraction=0.2"},
               "its 20 decay steps and 90 warm-up steps exceed train.steps = 100");
  // Valid settings of each schedule load.
  EXPECT_EQ(load_config("", {"train.lr_schedule=multistep", "train.lr_milestones=20,60"}).train.lr_milestones,
            (std::vector<int64_t>{20, 60}));
  EXPECT_NO_THROW(load_config("", {"train.lr_schedule=wsd", "train.steps=100", "train.lr_decay_fraction=0.1"}));
  EXPECT_NO_THROW(load_config("", {"train.lr_schedule=cosine_restarts", "train.lr_restart_mult=2"}));
}

TEST_F(ConfigTest, DropoutFieldsAreChecked) {
  auto expect_error = [&](std::vector<std::string> sets, const std::string& expected) {
    const std::string msg = error_of("", sets);
    EXPECT_NE(msg.find(expected), std::string::npos) << msg;
  };
  expect_error({"train.dropout=1"}, "train.dropout = 1: expected in [0, 1)");
  expect_error({"train.dropout=-0.1"}, "train.dropout = -0.1: expected in [0, 1)");
  expect_error({"train.attention_dropout=1.5"}, "train.attention_dropout = 1.5: expected in [0, 1), or -1");
  expect_error({"model.kind=cnn", "train.residual_dropout=0.1"},
               "train.residual_dropout is a gpt dropout site; model.kind = cnn drops at train.dropout's sites");
  // The per-site rates override train.dropout; -1 follows it.
  const Config c = load_config("", {"train.dropout=0.1", "train.attention_dropout=0"});
  EXPECT_EQ(c.train.embedding_dropout, -1);
  EXPECT_NO_THROW(load_config("", {"model.kind=lstm", "train.dropout=0.5"}));
}

TEST_F(ConfigTest, ModelFieldsRoundTrip) {
  ModelConfig m;
  m.kind = "cnn";
  m.channels = {3, 5};
  m.pool = "none";
  m.input_shape = {2, 9, 7};
  const auto fields = model_fields(m);
  ASSERT_FALSE(fields.empty());
  EXPECT_EQ(fields.front().first, "kind");
  for (const auto& [name, value] : fields) EXPECT_NE(name, "n_head");
  const ModelConfig back = model_from_fields(fields, "test");
  EXPECT_EQ(model_fields(back), fields);
  EXPECT_EQ(back.input_shape, m.input_shape);
}

}  // namespace
}  // namespace strata
