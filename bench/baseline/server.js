// The baseline of ./dev bench (issue 11): the plain synchronous server a team
// would otherwise write for the seed's five routes. Express + Mongoose +
// jsonwebtoken, one database call per request, no queue. It is a yardstick,
// not a product: BENCHMARKS.md compares the service with it.
//
// env: PORT (8000), MONGODB_URI, JWT_SECRET (HS256; claims sub, role, team, exp)
const express = require('express');
const mongoose = require('mongoose');
const jwt = require('jsonwebtoken');

const PORT = Number(process.env.PORT || 8000);
const MONGODB_URI = process.env.MONGODB_URI || 'mongodb://127.0.0.1:27017/ticketing';
const JWT_SECRET = process.env.JWT_SECRET;
if (!JWT_SECRET) {
  console.error('JWT_SECRET is not set');
  process.exit(1);
}

// ------------------------------------------------------------------ model

const responseSchema = new mongoose.Schema(
  {
    creatorId: { type: String, required: true },
    creatorType: { type: String, enum: ['customer', 'admin'], required: true },
    description: { type: String, required: true },
  },
  { timestamps: true }
);

// The seed's field order; createdAt, updatedAt and __v come last, as Mongoose
// writes them. teamId scopes a customer's reads and is not shown.
const ticketSchema = new mongoose.Schema(
  {
    creatorId: { type: String, required: true },
    creatorType: { type: String, enum: ['customer', 'admin'], required: true },
    category: { type: String, required: true },
    subject: { type: String, required: true },
    description: { type: String, required: true },
    priority: { type: String, enum: ['low', 'medium', 'high'], default: 'low' },
    status: { type: String, enum: ['created', 'open', 'pending', 'resolved', 'closed'], default: 'created' },
    response: [responseSchema],
    teamId: { type: String, index: true },
  },
  {
    timestamps: true,
    toJSON: {
      transform: (doc, ret) => {
        delete ret.teamId;
        return ret;
      },
    },
  }
);

const Ticket = mongoose.model('Ticket', ticketSchema);

// ------------------------------------------------------------------- auth

function auth(role) {
  return (req, res, next) => {
    const header = req.headers.authorization || '';
    if (!header.startsWith('Bearer ')) {
      return res.status(401).json({ success: false, message: 'Unauthorized' });
    }
    let user;
    try {
      user = jwt.verify(header.slice(7), JWT_SECRET, { algorithms: ['HS256'] });
    } catch (err) {
      return res.status(401).json({ success: false, message: 'Invalid or expired token' });
    }
    if (user.role !== role) {
      return res.status(403).json({ success: false, message: 'Forbidden' });
    }
    if (role === 'customer' && !user.team) {
      return res.status(401).json({ success: false, message: 'Invalid or expired token' });
    }
    req.user = user;
    next();
  };
}

// ----------------------------------------------------------------- routes

const router = express.Router();

function pageSize(req) {
  const limit = parseInt(req.query.limit, 10);
  return limit >= 1 && limit <= 200 ? limit : 50;
}

router.post('/create-ticket', auth('customer'), async (req, res, next) => {
  try {
    const { category, subject, description, priority } = req.body;
    if (!category || !subject || !description) {
      return res.status(400).json({ success: false, message: 'category, subject and description are required' });
    }
    const ticket = await Ticket.create({
      creatorId: req.user.sub,
      creatorType: 'customer',
      category,
      subject,
      description,
      priority,
      teamId: req.user.team,
    });
    res.status(201).json({ success: true, message: 'Ticket created successfullly!', data: ticket });
  } catch (err) {
    next(err);
  }
});

router.get('/get-tickets', auth('customer'), async (req, res, next) => {
  try {
    const tickets = await Ticket.find({ teamId: req.user.team }).sort({ createdAt: -1 }).limit(pageSize(req));
    res.json({ success: true, message: 'Ticket fetched successfullly!', data: tickets });
  } catch (err) {
    next(err);
  }
});

router.get('/admin-get-tickets', auth('admin'), async (req, res, next) => {
  try {
    const tickets = await Ticket.find().sort({ createdAt: -1 }).limit(pageSize(req));
    res.json({ success: true, message: 'Ticket fetched successfullly!', data: tickets });
  } catch (err) {
    next(err);
  }
});

// One findOneAndUpdate: the reply is pushed and __v bumped in the same call.
function reply(creatorType) {
  return async (req, res, next) => {
    try {
      const { description } = req.body;
      if (!description) {
        return res.status(400).json({ success: false, message: 'description is required' });
      }
      if (!mongoose.isValidObjectId(req.query.id)) {
        return res.status(400).json({ success: false, message: 'Invalid ticket id' });
      }
      const filter = { _id: req.query.id };
      if (creatorType === 'customer') filter.teamId = req.user.team;
      const ticket = await Ticket.findOneAndUpdate(
        filter,
        { $push: { response: { creatorId: req.user.sub, creatorType, description } }, $inc: { __v: 1 } },
        { new: true }
      );
      if (!ticket) {
        return res.status(404).json({ success: false, message: 'Ticket not found' });
      }
      res.json({ success: true, message: 'Response added successfully!', data: ticket });
    } catch (err) {
      next(err);
    }
  };
}

router.post('/create-reply', auth('customer'), reply('customer'));
router.post('/admin-create-reply', auth('admin'), reply('admin'));

// -------------------------------------------------------------------- app

const app = express();
app.use(express.json());
app.use('/api/ticket', router);
app.use((req, res) => res.status(404).json({ success: false, message: 'Not found' }));
app.use((err, req, res, next) => {
  if (err.type === 'entity.parse.failed') {
    return res.status(400).json({ success: false, message: 'Invalid JSON' });
  }
  if (err.name === 'ValidationError' || err.name === 'CastError') {
    return res.status(400).json({ success: false, message: err.message });
  }
  console.error(err);
  res.status(500).json({ success: false, message: 'Internal server error' });
});

// Mongoose's defaults work with FerretDB 1.24 as they are: autoIndex builds
// the teamId index at start (FerretDB supports createIndexes), and retryable
// writes are not used against a standalone server.
mongoose
  .connect(MONGODB_URI)
  .then(() => {
    app.listen(PORT, '127.0.0.1', () => console.log(`baseline listening on 127.0.0.1:${PORT}`));
  })
  .catch((err) => {
    console.error('cannot connect to MongoDB:', err.message);
    process.exit(1);
  });
